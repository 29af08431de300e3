using System.Net;
using FastPool.IntegrationTests.Infrastructure;
using FastPool.Proxy.Configuration;
using FastPool.Sandbox;

namespace FastPool.IntegrationTests.Metrics;

/// <summary>A test proxy with metrics_listen on a free port, and an HTTP client for it.</summary>
internal static class MetricsSupport
{
    private static readonly HttpClient s_http = new() { Timeout = TimeSpan.FromSeconds(30) };

    public static ProxyHost StartWithMetrics(PgCluster backend, Func<ProxyConfig, ProxyConfig>? configure = null) =>
        Admin.AdminSupport.StartProxy(backend, c =>
        {
            c = c with { FastPool = c.FastPool with { MetricsListen = new ListenEndpoint("127.0.0.1", 0) } };
            return configure is null ? c : configure(c);
        });

    public static Uri Url(ProxyHost host, string path) =>
        new($"http://127.0.0.1:{host.Server.MetricsEndPoint!.Port}{path}");

    public static async Task<(HttpStatusCode Status, string Body, string? ContentType)> GetAsync(ProxyHost host, string path)
    {
        using var response = await s_http.GetAsync(Url(host, path));
        return (response.StatusCode, await response.Content.ReadAsStringAsync(), response.Content.Headers.ContentType?.ToString());
    }

    /// <summary>/metrics, parsed strictly (a format error fails the test).</summary>
    public static async Task<Dictionary<string, PromFamily>> ScrapeAsync(ProxyHost host)
    {
        var (status, body, contentType) = await GetAsync(host, "/metrics");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.StartsWith("text/plain; version=0.0.4", contentType, StringComparison.Ordinal);
        return PrometheusText.Parse(body);
    }
}
