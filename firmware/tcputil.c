/* tcputil.c — see tcputil.h. */
#include "tcputil.h"

void tcputil_detach(struct altcp_pcb *pcb)
{
    altcp_arg(pcb, NULL);
    altcp_recv(pcb, NULL);
    altcp_sent(pcb, NULL);
    altcp_err(pcb, NULL);
    altcp_poll(pcb, NULL, 0);
}

void tcputil_drop(struct altcp_pcb *pcb, struct pbuf *p)
{
    if (!p)
        return;
    if (pcb)
        altcp_recved(pcb, p->tot_len);
    pbuf_free(p);
}

struct pbuf *tcputil_pop(struct pbuf *head)
{
    struct pbuf *rest = head->next;
    if (rest)
        pbuf_ref(rest); /* pbuf_free(head) then releases only the head */
    pbuf_free(head);
    return rest;
}

err_t tcputil_close(struct altcp_pcb *pcb)
{
    if (altcp_close(pcb) == ERR_OK)
        return ERR_OK;
    altcp_abort(pcb);
    return ERR_ABRT;
}
