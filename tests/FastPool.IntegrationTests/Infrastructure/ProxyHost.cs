using System.Collections.Concurrent;
using FastPool.Proxy;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Transport;
using FastPool.Sandbox;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace FastPool.IntegrationTests.Infrastructure;

/// <summary>
/// FastPool running in-process in front of a real PostgreSQL, on a free port, with trust auth (for the suite's users) and the log
/// lines captured for assertions. Each test makes its own, with the settings it needs.
/// </summary>
internal sealed class ProxyHost : IAsyncDisposable
{
    private readonly ILoggerFactory _loggerFactory;

    private ProxyHost(ProxyServer server, ILoggerFactory loggerFactory, ConcurrentQueue<string> logs, ProxyConfig config)
    {
        Server = server;
        _loggerFactory = loggerFactory;
        Logs = logs;
        Config = config;
    }

    public ProxyServer Server { get; }

    public ProxyConfig Config { get; }

    public ConcurrentQueue<string> Logs { get; }

    public int Port => Server.Port;

    /// <summary>
    /// The transport the in-process proxies use: FASTPOOL_TEST_TRANSPORT=sockets|epoll|io_uring runs the whole suite on
    /// that one (.ci/run runs it once per transport); unset means the product's default (auto).
    /// </summary>
    public static TransportKind TestTransport { get; } =
        Environment.GetEnvironmentVariable("FASTPOOL_TEST_TRANSPORT")?.ToLowerInvariant() switch
        {
            "sockets" => TransportKind.Sockets,
            "epoll" => TransportKind.Epoll,
            "io_uring" => TransportKind.IoUring,
            _ => TransportKind.Auto,
        };

    /// <summary>
    /// The users the suite logs in as under trust, as an auth_file listing them with empty secrets would: trust lets
    /// in only users it knows, as in PgBouncer. A new test user goes here (or into the test's own AuthFileUsers).
    /// no_such_role is known to FastPool but not to PostgreSQL, for tests of a login the server refuses.
    /// </summary>
    public static IReadOnlyDictionary<string, string> TrustedUsers { get; } = new[]
    {
        "postgres", PostgresFixture.AppUser, PostgresFixture.ScramUser, PostgresFixture.Md5User, PostgresFixture.PasswordUser,
        PostgresFixture.TwinUser, "fp_admin", "fp_stats", "qc_reader", "no_such_role",
    }.ToDictionary(u => u, _ => string.Empty, StringComparer.Ordinal);

    /// <summary>The default configuration: every database name goes to <paramref name="backend"/>, session mode, trust for <see cref="TrustedUsers"/>.</summary>
    public static ProxyConfig DefaultConfig(PgCluster backend) => new()
    {
        ListenAddresses = ["127.0.0.1"],
        ListenPort = 0,
        UnixSocketDir = string.Empty,
        AuthType = AuthType.Trust,
        AuthFileUsers = TrustedUsers,
        PoolMode = PoolMode.Session,
        DefaultPoolSize = 5,
        StatsPeriod = TimeSpan.Zero,
        FastPool = new FastPoolSettings { Transport = TestTransport },
        FallbackDatabase = new DatabaseConfig { Name = "*", Nodes = [new NodeEndpoint(backend.Host, backend.Port)] },
    };

    public static ProxyHost Start(PgCluster backend, Func<ProxyConfig, ProxyConfig>? configure = null) =>
        Start(configure is null ? DefaultConfig(backend) : configure(DefaultConfig(backend)));

    public static ProxyHost Start(ProxyConfig config)
    {
        var logs = new ConcurrentQueue<string>();
        var loggerFactory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(new CapturingLoggerProvider(logs)));
        var server = new ProxyServer(config, loggerFactory);
        server.Start();
        return new ProxyHost(server, loggerFactory, logs, config);
    }

    /// <summary>An Npgsql connection string through the proxy (client-side pooling off, so every Open is a real client).</summary>
    public string ConnectionString(string database = "postgres", string user = "postgres", string? password = null)
    {
        var b = new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = Port,
            Database = database,
            Username = user,
            Pooling = false,
            Timeout = 15,
            CommandTimeout = 60,
        };
        if (password is not null)
        {
            b.Password = password;
        }

        return b.ConnectionString;
    }

    public async Task<NpgsqlConnection> OpenAsync(string database = "postgres", string user = "postgres")
    {
        var conn = new NpgsqlConnection(ConnectionString(database, user));
        await conn.OpenAsync();
        return conn;
    }

    public async ValueTask DisposeAsync()
    {
        await Server.StopAsync(ShutdownMode.Immediate);
        await Server.DisposeAsync();
        _loggerFactory.Dispose();
    }

    private sealed class CapturingLoggerProvider(ConcurrentQueue<string> logs) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new CapturingLogger(logs);

        public void Dispose()
        {
        }
    }

    private sealed class CapturingLogger(ConcurrentQueue<string> logs) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            logs.Enqueue($"{logLevel}: {formatter(state, exception)}");
    }
}
