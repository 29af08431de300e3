using System.Globalization;
using FastPool.Proxy;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Pooling;
using FastPool.Proxy.Sessions;
using FastPool.Proxy.Topology;
using Microsoft.Extensions.Logging.Abstractions;

namespace FastPool.Hosting;

/// <summary>
/// <c>fastpool cache install-triggers DATABASE [--config FILE]</c>: installs the statement-level triggers whose
/// notifications let FastPool invalidate cached results for writes made directly on the server. With a config
/// file, the database entry's first node and the login the health checks use (sr_check_user, the entry's user,
/// postgres); without one, PGHOST/PGPORT/PGUSER/PGPASSWORD as libpq reads them (defaults 127.0.0.1, 5432, postgres).
/// </summary>
internal static class CacheCommand
{
    public static async Task<int> InstallTriggersAsync(string database, string? configPath)
    {
        ProxyConfig config;
        if (configPath is not null)
        {
            var result = ConfigLoader.Load(configPath);
            if (result.Config is null)
            {
                foreach (var error in result.Errors)
                {
                    await Console.Error.WriteLineAsync("FATAL " + error).ConfigureAwait(false);
                }

                return ExitCodes.ConfigInvalid;
            }

            config = result.Config;
        }
        else
        {
            string host = Environment.GetEnvironmentVariable("PGHOST") is { Length: > 0 } h ? h : "127.0.0.1";
            int port = int.TryParse(Environment.GetEnvironmentVariable("PGPORT"), NumberStyles.None, CultureInfo.InvariantCulture, out var p) ? p : 5432;
            string user = Environment.GetEnvironmentVariable("PGUSER") is { Length: > 0 } u ? u : "postgres";
            config = new ProxyConfig
            {
                FallbackDatabase = new DatabaseConfig
                {
                    Name = "*",
                    Nodes = [new NodeEndpoint(host, port)],
                    User = user,
                    Password = Environment.GetEnvironmentVariable("PGPASSWORD"),
                },
            };
        }

        var entry = config.FindDatabase(database);
        if (entry is null)
        {
            await Console.Error.WriteLineAsync($"FATAL database \"{database}\" has no entry in {configPath}").ConfigureAwait(false);
            return ExitCodes.ConfigInvalid;
        }

        var runtime = new ProxyRuntime(config, TimeProvider.System, NullLoggerFactory.Instance);
        var topology = runtime.GetTopology(entry);
        var node = topology.Nodes[0];
        ServerConnection? server = null;
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            server = await NodeProbe.OpenAsync(runtime, config, entry, node, NodeProbe.CheckLogin(config, entry), entry.DbName ?? database, TimeSpan.FromSeconds(10), cts.Token).ConfigureAwait(false);
            var row = await MessageIo.QueryFirstRowAsync(server, new Protocol.MessageBuilder(), CacheTriggers.InstallSql, cts.Token).ConfigureAwait(false);
            await Console.Out.WriteLineAsync($"installed cache invalidation triggers on {row[0]} tables of database \"{entry.DbName ?? database}\" ({node.Endpoint.Host}:{node.Endpoint.Port})").ConfigureAwait(false);
            return ExitCodes.Ok;
        }
        catch (Exception ex)
        {
            await Console.Error.WriteLineAsync("FATAL could not install the triggers: " + (ex is ServerException se ? se.Message : ServerConnector.Describe(ex))).ConfigureAwait(false);
            return ExitCodes.StartFailed;
        }
        finally
        {
            if (server is not null)
            {
                await server.TerminateAndCloseAsync().ConfigureAwait(false);
            }
        }
    }
}
