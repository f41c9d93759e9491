"""Per-system figures (medians over rounds), ratios appliance/Postfix, the
printed table and the JSON document."""
import json
import statistics

REFERENCE = "postfix"

# (key, label, format, how to get it from one round's phases)
METRICS = [
    ("accepted_per_s", "accepted msg/s", "%.1f",
     lambda r: r["throughput"]["accepted_per_s"]),
    ("e2e_per_s", "end-to-end msg/s", "%.1f",
     lambda r: r["throughput"]["e2e_per_s"]),
    ("cpu_s_per_1000", "CPU s / 1000 msg", "%.2f",
     lambda r: r["throughput"]["cpu_s_per_1000"]),
    ("pss_peak_mib", "peak PSS MiB", "%.1f",
     lambda r: r["pss_peak_kib"] / 1024.0),
    ("latency_p50_ms", "latency p50 ms", "%.1f",
     lambda r: r["latency"]["p50_ms"]),
    ("latency_p99_ms", "latency p99 ms", "%.1f",
     lambda r: r["latency"]["p99_ms"]),
    ("drain1_per_s", "drain, 1 conn, msg/s", "%.1f",
     lambda r: r["drain1"]["drain_per_s"] if "drain1" in r else None),
    ("helper_cpu_s_per_1000", "(board CPU s / 1000)", "%.2f",
     lambda r: r["throughput"]["helper_cpu_s_per_1000"]),
]

# Top-level ratio keys (appliance ÷ Postfix, of the medians).
RATIOS = [
    ("accepted_ratio", "accepted_per_s"),
    ("e2e_ratio", "e2e_per_s"),
    ("cpu_ratio", "cpu_s_per_1000"),
    ("mem_ratio", "pss_peak_mib"),
    ("latency_p50_ratio", "latency_p50_ms"),
    ("latency_p99_ratio", "latency_p99_ms"),
    ("drain1_ratio", "drain1_per_s"),
]


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _phase_exact(rounds):
    ok = True
    for r in rounds:
        for phase in ("throughput", "latency", "drain1"):
            if phase in r and not r[phase]["exact"]["exact"]:
                ok = False
    return ok


def summarize(results, variant):
    """results: [{"variant", "system", "round", "figures"}]. Returns
    {system: {metric: median, "rounds": n, "exact": bool}}."""
    by_system = {}
    for res in results:
        if res["variant"] == variant:
            by_system.setdefault(res["system"], []).append(res["figures"])
    out = {}
    for system, rounds in by_system.items():
        row = {"rounds": len(rounds), "exact": _phase_exact(rounds)}
        for key, _, _, get in METRICS:
            row[key] = _median([get(r) for r in rounds])
        out[system] = row
    return out


def ratios(summary, appliance_row):
    a, p = summary.get(appliance_row), summary.get(REFERENCE)
    out = {}
    for rkey, mkey in RATIOS:
        av = a.get(mkey) if a else None
        pv = p.get(mkey) if p else None
        out[rkey] = (av / pv) if (av is not None and pv) else None
    return out


def table(summary, title, appliance_rows):
    systems = list(appliance_rows) + ([REFERENCE] if REFERENCE in summary else [])
    systems = [s for s in systems if s in summary]
    ratio_cols = [s for s in appliance_rows if s in summary and REFERENCE in summary]
    head = ["metric"] + systems + [("appliance/%s" % REFERENCE) if len(ratio_cols) == 1
                                   else "%s / %s" % (s, REFERENCE) for s in ratio_cols]
    rows = []
    for key, label, fmt, _ in METRICS:
        line = [label]
        for s in systems:
            v = summary[s].get(key)
            line.append(fmt % v if v is not None else "-")
        for s in ratio_cols:
            av, pv = summary[s].get(key), summary[REFERENCE].get(key)
            line.append("%.2f" % (av / pv) if (av is not None and pv) else "-")
        rows.append(line)
    rows.append(["every msg once"] + ["yes" if summary[s]["exact"] else "NO" for s in systems]
                + [""] * len(ratio_cols))
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    lines = [title]
    for i, r in enumerate([head] + rows):
        lines.append("  ".join(str(c).ljust(widths[0]) if j == 0 else str(c).rjust(widths[j])
                               for j, c in enumerate(r)))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _wire(row):
    """"appliance/tap" -> "tap"."""
    return row.split("/", 1)[1] if "/" in row else row


def document(params, results, variants, appliance_rows, duration_s, error, host=None):
    doc = {
        "schema": "shr-bench/1",
        "params": params,
        "host": host or {},
        "duration_s": round(duration_s, 1),
        "complete": error is None,
        "error": error,
        "ratio_definition": "appliance figure / Postfix figure, each the median over rounds; "
                            ">1 is better for the appliance for *_per_s (accepted, e2e, drain1), "
                            "<1 is better for cpu, mem and latency",
        # The top-level *_ratio keys are this row's; every row's are in
        # [tls_]ratios_by_wire and [tls_]systems[row]["ratios"].
        "primary_appliance_row": appliance_rows[0],
    }
    all_exact = True
    # The plaintext keys are always there (null when not measured).
    for key, _ in RATIOS:
        doc[key] = None
    doc["ratios_by_wire"] = {_wire(row): {key: None for key, _ in RATIOS}
                             for row in appliance_rows}
    for variant in variants:
        prefix = "tls_" if variant == "tls" else ""
        summary = summarize(results, variant)
        for row in summary.values():
            all_exact = all_exact and row["exact"]
        doc[prefix + "systems"] = summary
        doc[prefix + "ratios_by_wire"] = {}
        for row in appliance_rows:
            doc[prefix + "ratios_by_wire"][_wire(row)] = ratios(summary, row)
            if row in summary:
                summary[row]["ratios"] = ratios(summary, row)
        for key, value in ratios(summary, appliance_rows[0]).items():
            doc[prefix + key] = value
    doc["exact"] = all_exact and error is None
    doc["rounds"] = results
    return doc


def write_json(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f, indent=2, sort_keys=False)
        f.write("\n")
