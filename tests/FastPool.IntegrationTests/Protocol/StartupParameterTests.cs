using FastPool.IntegrationTests.Infrastructure;
using Npgsql;
using static FastPool.IntegrationTests.Protocol.ProtocolTestSupport;

namespace FastPool.IntegrationTests.Protocol;

/// <summary>
/// Startup parameters (application_name, TimeZone, search_path, DateStyle, "options") reach the pooled server
/// connection, and the ParameterStatus the client got at login says what the server really uses. Every value is
/// also compared with what a direct connection to PostgreSQL reports for the same connection string.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class StartupParameterTests
{
    private readonly PostgresFixture _fixture;

    public StartupParameterTests(PostgresFixture fixture)
    {
        _fixture = fixture;
    }

    [Fact]
    public async Task ApplicationName_ReachesServer_AndParameterStatus()
    {
        var app = UniqueName("proto-app");
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var conn = await OpenThroughProxyAsync(proxy, b => b.ApplicationName = app);

        Assert.Equal(app, await ScalarAsync(conn, "show application_name"));
        Assert.Equal(app, conn.PostgresParameters["application_name"]);

        // Server-side fact: pg_stat_activity of the backend serving us carries the name.
        var pid = await ScalarAsync<int>(conn, "select pg_backend_pid()");
        Assert.Equal(app, await _fixture.Primary.PsqlAsync($"select application_name from pg_stat_activity where pid = {Invariant(pid)}"));
    }

    [Fact]
    public async Task TimeZone_FromNpgsqlTimezone_ReachesServer_AndParameterStatus()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        var serverDefault = await _fixture.Primary.PsqlAsync("show timezone");
        var zone = serverDefault == "Asia/Tokyo" ? "America/Sao_Paulo" : "Asia/Tokyo";
        await using var conn = await OpenThroughProxyAsync(proxy, b => b.Timezone = zone);

        Assert.Equal(zone, await ScalarAsync(conn, "show timezone"));
        Assert.Equal(zone, conn.PostgresParameters["TimeZone"]);
        Assert.Equal(
            await DirectScalarAsync(b => b.Timezone = zone, "select '2024-01-01 00:00:00+00'::timestamptz::text"),
            await ScalarAsync(conn, "select '2024-01-01 00:00:00+00'::timestamptz::text"));
    }

    [Fact]
    public async Task Options_TimeZone_DateStyle_StatementTimeout_ReachServer_AndParameterStatus()
    {
        // A backslash escapes the space inside a value, as libpq/PostgreSQL define for "options".
        const string options = @"-c TimeZone=Pacific/Auckland -c DateStyle=ISO,\ DMY --statement-timeout=4321";
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var conn = await OpenThroughProxyAsync(proxy, b => b.Options = options);

        Assert.Equal("Pacific/Auckland", await ScalarAsync(conn, "show timezone"));
        Assert.Equal("ISO, DMY", await ScalarAsync(conn, "show datestyle"));
        Assert.Equal("4321ms", await ScalarAsync(conn, "show statement_timeout"));
        Assert.Equal("Pacific/Auckland", conn.PostgresParameters["TimeZone"]);
        Assert.Equal("ISO, DMY", conn.PostgresParameters["DateStyle"]);

        // DMY decides how an ambiguous date literal reads: the 3rd of April.
        Assert.Equal("2024-04-03", await ScalarAsync(conn, "select '03/04/2024'::date::text"));
        Assert.Equal("2024-04-03", await DirectScalarAsync(b => b.Options = options, "select '03/04/2024'::date::text"));
    }

    [Fact]
    public async Task SearchPath_FromOptions_ListOfSchemas_IsAppliedLikePostgres()
    {
        var schema = UniqueName("proto_sp");
        await _fixture.Primary.PsqlAsync($"create schema {schema}; create table {schema}.only_here(v text); insert into {schema}.only_here values ('found')");
        try
        {
            var options = $"-c search_path={schema},public";
            // PostgreSQL reads the value as a list of two schemas.
            Assert.Equal(new[] { schema, "public" }, await DirectScalarAsync(b => b.Options = options, "select current_schemas(false)"));
            var directShow = await DirectScalarAsync(b => b.Options = options, "show search_path");

            await using var proxy = ProxyHost.Start(_fixture.Primary);
            await using var conn = await OpenThroughProxyAsync(proxy, b => b.Options = options);
            Assert.Equal(directShow, await ScalarAsync(conn, "show search_path"));
            Assert.Equal(new[] { schema, "public" }, await ScalarAsync(conn, "select current_schemas(false)"));
            Assert.Equal("found", await ScalarAsync(conn, "select v from only_here"));
            Assert.Equal(schema, await ScalarAsync(conn, "select current_schema()"));
        }
        finally
        {
            await _fixture.Primary.PsqlAsync($"drop schema if exists {schema} cascade");
        }
    }

    [Fact]
    public async Task SearchPath_FromNpgsqlSearchPath_ListOfSchemas_IsAppliedLikePostgres()
    {
        var schema = UniqueName("proto_sp");
        await _fixture.Primary.PsqlAsync($"create schema {schema}; create table {schema}.only_here(v text); insert into {schema}.only_here values ('found')");
        try
        {
            var searchPath = $"{schema},public";
            Assert.Equal(new[] { schema, "public" }, await DirectScalarAsync(b => b.SearchPath = searchPath, "select current_schemas(false)"));
            var directShow = await DirectScalarAsync(b => b.SearchPath = searchPath, "show search_path");

            await using var proxy = ProxyHost.Start(_fixture.Primary);
            await using var conn = await OpenThroughProxyAsync(proxy, b => b.SearchPath = searchPath);
            Assert.Equal(directShow, await ScalarAsync(conn, "show search_path"));
            Assert.Equal(new[] { schema, "public" }, await ScalarAsync(conn, "select current_schemas(false)"));
            Assert.Equal("found", await ScalarAsync(conn, "select v from only_here"));
        }
        finally
        {
            await _fixture.Primary.PsqlAsync($"drop schema if exists {schema} cascade");
        }
    }

    [Fact]
    public async Task SearchPath_SingleSchema_ReachesServer()
    {
        var schema = UniqueName("proto_sp");
        await _fixture.Primary.PsqlAsync($"create schema {schema}; create table {schema}.only_here(v text); insert into {schema}.only_here values ('single')");
        try
        {
            await using var proxy = ProxyHost.Start(_fixture.Primary);
            await using var conn = await OpenThroughProxyAsync(proxy, b => b.SearchPath = schema);
            Assert.Equal(schema, await ScalarAsync(conn, "show search_path"));
            Assert.Equal("single", await ScalarAsync(conn, "select v from only_here"));
        }
        finally
        {
            await _fixture.Primary.PsqlAsync($"drop schema if exists {schema} cascade");
        }
    }

    [Fact]
    public async Task Options_CustomPlaceholderSetting_ReachesServer()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var conn = await OpenThroughProxyAsync(proxy, b => b.Options = "-c myapp.tenant=tenant\\ 42");
        Assert.Equal("tenant 42", await ScalarAsync(conn, "select current_setting('myapp.tenant')"));
    }

    [Fact]
    public async Task Options_UnknownSetting_FailsLoginWithServersSqlState_AndProxyKeepsWorking()
    {
        const string options = "-c no_such_setting_anywhere=1";
        var b = new NpgsqlConnectionStringBuilder(_fixture.SuperuserConnectionString()) { Options = options };
        await using (var direct = new NpgsqlConnection(b.ConnectionString))
        {
            var directError = await Assert.ThrowsAsync<PostgresException>(() => direct.OpenAsync());
            Assert.Equal(PostgresErrorCodes.UndefinedObject, directError.SqlState);
        }

        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with { DefaultPoolSize = 1 });
        for (int i = 0; i < 3; i++)
        {
            var ex = await Assert.ThrowsAsync<PostgresException>(() => OpenThroughProxyAsync(proxy, x => x.Options = options));
            Assert.Equal(PostgresErrorCodes.UndefinedObject, ex.SqlState);
        }

        // The single pooled server was not lost or left dirty by the failed logins.
        await using var ok = await proxy.OpenAsync();
        Assert.Equal(1, await ScalarAsync(ok, "select 1"));
        Assert.True(proxy.Server.ServerCount <= 1);
    }

    [Fact]
    public async Task PooledServer_NextClient_GetsItsOwnSettings_NotThePreviousClients()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary, c => c with { DefaultPoolSize = 1 });
        var serverZone = await _fixture.Primary.PsqlAsync("show timezone");
        var zone = serverZone == "Asia/Tokyo" ? "America/Sao_Paulo" : "Asia/Tokyo";

        int firstPid;
        await using (var first = await OpenThroughProxyAsync(proxy, b =>
        {
            b.ApplicationName = "first-client";
            b.Timezone = zone;
            b.Options = "-c DateStyle=ISO,DMY";
        }))
        {
            firstPid = await ScalarAsync<int>(first, "select pg_backend_pid()");
            Assert.Equal(zone, await ScalarAsync(first, "show timezone"));
            Assert.Equal(zone, first.PostgresParameters["TimeZone"]);
        }

        await using var second = await OpenThroughProxyAsync(proxy, _ => { });
        Assert.Equal(firstPid, await ScalarAsync<int>(second, "select pg_backend_pid()"));

        // The same server connection, but back at the server's defaults, in SHOW and in the client's ParameterStatus.
        Assert.Equal(serverZone, await ScalarAsync(second, "show timezone"));
        Assert.Equal(serverZone, second.PostgresParameters["TimeZone"]);
        Assert.Equal("ISO, MDY", await ScalarAsync(second, "show datestyle"));
        Assert.Equal("ISO, MDY", second.PostgresParameters["DateStyle"]);
        Assert.Equal(string.Empty, await ScalarAsync(second, "show application_name"));
        Assert.Equal(string.Empty, second.PostgresParameters.GetValueOrDefault("application_name", string.Empty));
    }

    [Fact]
    public async Task RawClient_ParameterStatus_MatchesServerSettings()
    {
        await using var proxy = ProxyHost.Start(_fixture.Primary);
        await using var raw = await RawPgClient.ConnectAsync("127.0.0.1", proxy.Port, "postgres", "postgres");

        Assert.Equal("raw-protocol-test", raw.Parameters["application_name"]);
        foreach (var name in new[] { "server_version", "server_encoding", "client_encoding", "DateStyle", "TimeZone", "integer_datetimes", "standard_conforming_strings" })
        {
            Assert.True(raw.Parameters.ContainsKey(name), $"ParameterStatus {name} missing; got {string.Join(", ", raw.Parameters.Keys)}");
            var shown = await raw.QueryAsync($"show {name}");
            Assert.Equal(shown.Results[0].Rows[0][0], raw.Parameters[name]);
        }

        // FastPool hands out its own key: the pid in BackendKeyData is not the server's.
        var pid = await raw.QueryAsync("select pg_backend_pid()");
        Assert.NotEqual(pid.Results[0].Rows[0][0], Invariant(raw.ProcessId));
    }

    private static async Task<NpgsqlConnection> OpenThroughProxyAsync(ProxyHost proxy, Action<NpgsqlConnectionStringBuilder> configure)
    {
        var b = new NpgsqlConnectionStringBuilder(proxy.ConnectionString());
        configure(b);
        var conn = new NpgsqlConnection(b.ConnectionString);
        await conn.OpenAsync();
        return conn;
    }

    private async Task<object?> DirectScalarAsync(Action<NpgsqlConnectionStringBuilder> configure, string sql)
    {
        var b = new NpgsqlConnectionStringBuilder(_fixture.SuperuserConnectionString());
        configure(b);
        await using var conn = new NpgsqlConnection(b.ConnectionString);
        await conn.OpenAsync();
        return await ScalarAsync(conn, sql);
    }
}
