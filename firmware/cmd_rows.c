/* cmd_rows.c — long listings shown a page at a time; see commands.h. */
#include <string.h>

#include "commands.h"
#include "config.h"
#include "db.h"

static int rows_step(struct console *con, void *ctx, int cancel)
{
    struct cmd_rows *r = ctx;
    int page = r->per_step ? r->per_step : CMD_PAGE_ROWS;
    int limit = r->left < page ? r->left : page;
    int before = r->shown;
    int64_t last = r->after;
    if (!cancel && (!cfg_db() || r->page(r, limit, &last) != DB_OK)) {
        console_stream_error(con, "storage error: %s", cfg_db() ? db_errmsg(cfg_db()) : "closed");
        cancel = 1;
    }
    if (!cancel) {
        r->after = last;
        r->left -= r->shown - before;
        if (r->shown - before == limit && r->left > 0)
            return 1; /* a full page: there may be more */
    }
    if (console_json(con))
        console_json_end(con);
    else if (!cancel && !r->shown && r->empty)
        console_printf(con, "%s\n", r->empty);
    return 0;
}

void cmd_rows_start(struct console *con, struct cmd_rows *r, cmd_page_fn page, int64_t after,
                    int n, const char *json_key)
{
    memset(r, 0, sizeof *r);
    r->con = con;
    r->page = page;
    r->after = after;
    r->left = n;
    struct jsonw *j = console_json(con);
    if (j) {
        jsonw_object(j, NULL);
        jsonw_array(j, json_key);
    }
    console_stream(con, rows_step, r);
}
