using System.Globalization;
using System.Net;
using System.Text;
using FastPool.Proxy.Topology;

namespace FastPool.Proxy.Metrics;

/// <summary>
/// The status page at "/": one self-contained HTML page (no scripts, no external files) that reloads itself
/// every few seconds, for a person with a browser. Machines read /metrics.
/// </summary>
internal static class StatusPage
{
    public const string ContentType = "text/html; charset=utf-8";

    /// <summary>Seconds between the page's own reloads.</summary>
    public const int RefreshSeconds = 5;

    private const string Style = """
        body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
        h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.1em;margin:1.4em 0 .4em}
        .state{display:inline-block;padding:.1em .6em;border-radius:.3em;color:#fff;background:#2a7}
        .state.off{background:#c33}
        .tiles{display:flex;gap:1em;flex-wrap:wrap}.tile{border:1px solid #ccc;border-radius:.4em;padding:.5em 1em}
        .tile b{display:block;font-size:1.4em}
        table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}td{white-space:nowrap}
        th:first-child,td:first-child,th:nth-child(2),td:nth-child(2){text-align:left}
        .down{color:#c33;font-weight:bold}
        """;

    public static string Render(ProxyRuntime runtime)
    {
        var pools = PoolGauges.Collect(runtime);
        var traffic = runtime.Stats.Databases.SelectMany(d => d.Users).ToDictionary(t => (t.Database, t.User));
        var reason = runtime.NotAcceptingReason;
        var uptime = runtime.Time.GetUtcNow() - runtime.StartedAt;
        long tps = runtime.Stats.Databases.Sum(d => d.Averages.Transactions);
        long qps = runtime.Stats.Databases.Sum(d => d.Averages.Queries);

        var html = new StringBuilder(4096);
        html.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
            .Append("<meta http-equiv=\"refresh\" content=\"").Append(RefreshSeconds).Append("\">")
            .Append("<title>FastPool status</title><style>").Append(Style).Append("</style></head><body>\n");
        html.Append("<h1>FastPool ").Append(Encode(Admin.AdminConsole.ProductVersion)).Append(" <span class=\"state")
            .Append(reason is null ? string.Empty : " off").Append("\" id=\"state\">").Append(reason is null ? "accepting" : Encode(reason)).Append("</span></h1>\n");
        html.Append("<p>Up ").Append(Encode(Duration(uptime))).Append(", since ")
            .Append(runtime.StartedAt.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture))
            .Append(". This page reloads every ").Append(RefreshSeconds).Append(" s; machines read <a href=\"/metrics\">/metrics</a>.</p>\n");

        html.Append("<div class=\"tiles\">");
        Tile(html, "clients", runtime.Clients.Count);
        Tile(html, "servers", runtime.Pools.AllPools.Sum(p => p.TotalCount));
        Tile(html, "waiting clients", pools.Sum(p => p.ClientsWaiting));
        Tile(html, "transactions", runtime.Stats.Transactions);
        Tile(html, "queries", runtime.Stats.Queries);
        Tile(html, "transactions/s (last stats_period)", tps);
        Tile(html, "queries/s (last stats_period)", qps);
        html.Append("</div>\n");

        html.Append("<h2>Pools</h2>\n<table id=\"pools\"><tr><th>database</th><th>user</th><th>mode</th><th>clients active</th><th>waiting</th>")
            .Append("<th>servers active</th><th>idle</th><th>used</th><th>login</th><th>max wait</th><th>pinned</th>")
            .Append("<th>transactions</th><th>queries</th><th>mean query</th><th>errors</th></tr>\n");
        foreach (var p in pools)
        {
            traffic.TryGetValue((p.Database, p.User), out var t);
            html.Append("<tr><td>").Append(Encode(p.Database)).Append("</td><td>").Append(Encode(p.User)).Append("</td><td>")
                .Append(p.Mode.ToString().ToLowerInvariant()).Append("</td>");
            Cells(html, p.ClientsActive, p.ClientsWaiting, p.ServersActive, p.ServersIdle, p.ServersUsed, p.ServersLogin);
            html.Append("<td>").Append(Encode(Duration(p.MaxWait))).Append("</td>");
            Cells(html, p.PinnedClients, t?.Transactions ?? 0, t?.Queries ?? 0);
            html.Append("<td>").Append(Encode(Mean(t?.QueryTime))).Append("</td>");
            Cells(html, t?.ErrorsByClass().Sum(e => e.Value) ?? 0);
            html.Append("</tr>\n");
        }

        html.Append("</table>\n");
        if (pools.Count == 0)
        {
            html.Append("<p>No pools yet: a pool opens with its first client.</p>\n");
        }

        html.Append("<h2>Nodes</h2>\n<table id=\"nodes\"><tr><th>database</th><th>node</th><th>address</th><th>status</th><th>role</th>")
            .Append("<th>replication delay (bytes)</th><th>replication delay (s)</th><th>last change</th></tr>\n");
        foreach (var (db, node) in MetricsReport.NodeRows(runtime))
        {
            var check = node.LastCheck;
            bool up = node.Status == NodeStatus.Up;
            html.Append("<tr><td>").Append(Encode(db)).Append("</td><td>").Append(node.Id).Append("</td><td>")
                .Append(Encode(node.Endpoint.Host + ":" + node.Endpoint.Port.ToString(CultureInfo.InvariantCulture))).Append("</td><td")
                .Append(up ? ">up" : " class=\"down\">down").Append("</td><td>").Append(MetricsReport.RoleName(node.Role)).Append("</td><td>")
                .Append(check?.DelayBytes?.ToString(CultureInfo.InvariantCulture) ?? "-").Append("</td><td>")
                .Append(check?.ReplayDelaySeconds?.ToString("0.###", CultureInfo.InvariantCulture) ?? "-").Append("</td><td>")
                .Append(Encode(node.LastChangeReason)).Append("</td></tr>\n");
        }

        html.Append("</table>\n</body></html>\n");
        return html.ToString();
    }

    private static void Tile(StringBuilder html, string label, long value) =>
        html.Append("<div class=\"tile\"><b>").Append(value.ToString("N0", CultureInfo.InvariantCulture)).Append("</b>").Append(Encode(label)).Append("</div>");

    private static void Cells(StringBuilder html, params ReadOnlySpan<long> values)
    {
        foreach (var v in values)
        {
            html.Append("<td>").Append(v.ToString(CultureInfo.InvariantCulture)).Append("</td>");
        }
    }

    private static string Mean(LatencyHistogram? histogram)
    {
        long count = histogram?.Count ?? 0;
        return count == 0 ? "-" : (histogram!.SumMicroseconds / 1000.0 / count).ToString("0.###", CultureInfo.InvariantCulture) + " ms";
    }

    private static string Duration(TimeSpan span) =>
        span.TotalDays >= 1 ? $"{(int)span.TotalDays}d {span.Hours}h"
        : span.TotalHours >= 1 ? $"{span.Hours}h {span.Minutes}m"
        : span.TotalMinutes >= 1 ? $"{span.Minutes}m {span.Seconds}s"
        : span.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture) + "s";

    private static string Encode(string text) => WebUtility.HtmlEncode(text);
}
