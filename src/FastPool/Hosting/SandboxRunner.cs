using System.Net;
using System.Net.Sockets;
using FastPool.Proxy;
using FastPool.Proxy.Configuration;
using FastPool.Sandbox;

namespace FastPool.Hosting;

/// <summary>
/// `fastpool` with no config (or --sandbox): a throwaway primary + streaming standby under a temp directory,
/// FastPool in front of them, a psql line to connect with, and everything removed on Ctrl-C.
/// </summary>
internal static class SandboxRunner
{
    public static async Task<int> RunAsync(RunOptions options)
    {
        if (options.ConfigPath is not null)
        {
            await Console.Error.WriteLineAsync($"--sandbox ignores the config file {options.ConfigPath}").ConfigureAwait(false);
        }

        Console.WriteLine("FastPool sandbox: starting a PostgreSQL primary and a streaming standby...");
        SandboxEnvironment sandbox;
        try
        {
            sandbox = await SandboxEnvironment.CreateAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            await Console.Error.WriteLineAsync("FATAL could not start the sandbox PostgreSQL: " + ex.Message).ConfigureAwait(false);
            return ExitCodes.StartFailed;
        }

        await using (sandbox.ConfigureAwait(false))
        {
            int port = options.Port ?? (IsFree(6432) ? 6432 : 0);
            var config = BuildConfig(sandbox, port);
            return await ProxyRunner.RunAsync(config, options, server =>
            {
                Console.WriteLine($"""
                    FastPool is listening on 127.0.0.1:{server.Port}, in front of:
                      primary  127.0.0.1:{sandbox.Primary.Port}  (node 0)
                      standby  127.0.0.1:{sandbox.Standby.Port}  (node 1, streaming from the primary)
                    Connect with:
                      psql -h 127.0.0.1 -p {server.Port} -U postgres postgres
                    Sandbox directory: {sandbox.Directory}
                    Press Ctrl-C to stop; the sandbox is removed.
                    """);
            }).ConfigureAwait(false);
        }
    }

    private static ProxyConfig BuildConfig(SandboxEnvironment sandbox, int port)
    {
        NodeEndpoint[] nodes = [new("127.0.0.1", sandbox.Primary.Port), new("127.0.0.1", sandbox.Standby.Port)];
        return new ProxyConfig
        {
            ListenAddresses = ["127.0.0.1"],
            ListenPort = port,
            UnixSocketDir = sandbox.Directory,
            // trust lets in only users it knows (as PgBouncer): postgres from the built-in list, and any role
            // created in the sandbox through auth_query, which logs in as postgres (the sandbox servers trust it).
            AuthType = AuthType.Trust,
            AuthFileUsers = new Dictionary<string, string>(StringComparer.Ordinal) { ["postgres"] = string.Empty },
            AuthUser = "postgres",
            PoolMode = PoolMode.Session,
            MaxClientConn = 1000,
            Databases = [new DatabaseConfig { Name = "postgres", Nodes = nodes, Origin = "sandbox" }],
            FallbackDatabase = new DatabaseConfig { Name = "*", Nodes = nodes, Origin = "sandbox" },
        };
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            probe.Bind(new IPEndPoint(IPAddress.Loopback, port));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
