using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using FastPool.Protocol;
using FastPool.Proxy.Connections;
using FastPool.Proxy.Pooling;

namespace FastPool.Proxy.Admin;

/// <summary>
/// The PgBouncer-compatible admin console: the virtual database "pgbouncer" (alias "fastpool"). FastPool answers
/// it itself over the simple query protocol, without any server connection. Commands and result columns follow
/// PgBouncer 1.18, so its exporters and scripts work unchanged.
/// </summary>
internal sealed partial class AdminConsole
{
    /// <summary>What SHOW VERSION answers and the console reports as server_version; PgBouncer's version keeps exporters that parse it working.</summary>
    public const string CompatibleVersion = "1.18.0";

    private readonly ClientContext _context;
    private readonly ProxyRuntime _runtime;
    private readonly ConsoleRole _role;
    private readonly MessageBuilder _out = new(1024);
    private readonly ResultWriter _result;

    // Runs once the reply is sent (SHUTDOWN answers first, then stops the server under its own client).
    private Action? _afterReply;

    public AdminConsole(ClientContext context, ConsoleRole role)
    {
        _context = context;
        _runtime = context.Runtime;
        _role = role;
        _result = new ResultWriter(_out);
    }

    public static bool IsConsoleDatabase(string name) => name is "pgbouncer" or "fastpool";

    public static string ProductVersion { get; } = ReadProductVersion();

    public async Task RunAsync()
    {
        _context.LoggedIn = true;
        if (_context.Config.LogConnections)
        {
            Log.ClientLogin(_runtime.Logger, _context.Id, _context.DatabaseName, _context.User, _context.Connection.RemoteEndPoint,
                _context.Startup!.GetParameter("application_name") ?? string.Empty);
        }

        if (!await SendAsync(Welcome()).ConfigureAwait(false))
        {
            return;
        }

        // After an error in an extended-protocol batch, PostgreSQL ignores everything up to Sync (55.2.3); so do we,
        // so the client sees one error and then ReadyForQuery, as it expects.
        bool skipToSync = false;
        while (true)
        {
            byte code;
            byte[] body;
            try
            {
                // A safe shutdown does not wait for console clients; when it ends, one waiting here is told 57P01.
                (code, body) = await MessageIo.ReadMessageAsync(_context.Connection.Input, _runtime.DrainOver).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_runtime.DrainOver.IsCancellationRequested)
            {
                await _context.SendErrorAsync(SqlState.AdminShutdown, ClientContext.ShutdownMessage).ConfigureAwait(false);
                return;
            }
            catch (ServerException ex) when (ex.SqlState == SqlState.ProtocolViolation)
            {
                // A length word below 4 or beyond what the console reads (1 MiB): a FATAL, as on the forwarding path.
                _context.CloseReason = "protocol violation on the admin console";
                await _context.SendErrorAsync(SqlState.ProtocolViolation, "invalid message length").ConfigureAwait(false);
                return;
            }
            catch (Exception)
            {
                _context.CloseReason = "client unexpected eof";
                return;
            }

            _out.Reset();
            switch ((FrontendCode)code)
            {
                case FrontendCode.Query:
                    skipToSync = false;
                    await RunQueryAsync(body).ConfigureAwait(false);
                    _out.ReadyForQuery(TransactionStatus.Idle);
                    break;
                case FrontendCode.Terminate:
                    _context.CloseReason = "client close request";
                    return;
                case FrontendCode.Sync:
                    skipToSync = false;
                    _out.ReadyForQuery(TransactionStatus.Idle);
                    break;
                case FrontendCode.Flush:
                    break;
                case FrontendCode.Parse or FrontendCode.Bind or FrontendCode.Describe or FrontendCode.Execute or FrontendCode.Close:
                    if (!skipToSync)
                    {
                        skipToSync = true;
                        _out.ErrorResponse("ERROR", SqlState.FeatureNotSupported,
                            "the admin console supports only the simple query protocol (use psql, or a driver's simple-query mode)");
                    }

                    break;
                case FrontendCode.FunctionCall:
                    _out.ErrorResponse("ERROR", SqlState.FeatureNotSupported, "the admin console does not run function calls");
                    _out.ReadyForQuery(TransactionStatus.Idle);
                    break;
                default:
                    _out.ErrorResponse("FATAL", SqlState.ProtocolViolation, $"unexpected message type '{(char)code}' on the admin console");
                    _context.CloseReason = "protocol violation on the admin console";
                    await SendAsync(_out.Written).ConfigureAwait(false);
                    return;
            }

            if (_out.Length > 0 && !await SendAsync(_out.Written).ConfigureAwait(false))
            {
                return;
            }

            var after = _afterReply;
            _afterReply = null;
            after?.Invoke();
        }
    }

    /// <summary>AuthenticationOk, the parameters psql and drivers look at, a key, ReadyForQuery (55.2.1).</summary>
    private ReadOnlyMemory<byte> Welcome()
    {
        _out.Reset();
        _out.AuthenticationOk();
        _out.ParameterStatus("server_version", CompatibleVersion + "/fastpool");
        _out.ParameterStatus("server_encoding", "UTF8");
        _out.ParameterStatus("client_encoding", "UTF8");
        _out.ParameterStatus("DateStyle", "ISO");
        _out.ParameterStatus("TimeZone", "UTC");
        _out.ParameterStatus("integer_datetimes", "on");
        _out.ParameterStatus("standard_conforming_strings", "on");
        _out.ParameterStatus("application_name", _context.Startup!.GetParameter("application_name") ?? string.Empty);

        // No query of the console can be cancelled; the key only satisfies clients that expect one.
        _out.BackendKeyData(RandomNumberGenerator.GetInt32(1, int.MaxValue), RandomNumberGenerator.GetInt32(int.MinValue, int.MaxValue));
        _out.ReadyForQuery(TransactionStatus.Idle);
        return _out.Written;
    }

    private async Task RunQueryAsync(byte[] body)
    {
        // The body is one C string (PostgreSQL docs 55.7, Query): PostgreSQL answers a missing terminator or bytes
        // after it with these errors and goes on.
        int end = Array.IndexOf(body, (byte)0);
        if (end < 0)
        {
            _out.ErrorResponse("ERROR", SqlState.ProtocolViolation, "invalid string in message");
            return;
        }

        if (end != body.Length - 1)
        {
            _out.ErrorResponse("ERROR", SqlState.ProtocolViolation, "invalid message format");
            return;
        }

        string sql = Encoding.UTF8.GetString(body, 0, end);
        var command = AdminCommand.Parse(sql, out var syntaxError);
        if (command is null)
        {
            _out.ErrorResponse("ERROR", SqlState.SyntaxError, syntaxError!);
            return;
        }

        if (command.Verb.Length == 0)
        {
            _out.StartMessage((byte)BackendCode.EmptyQueryResponse).EndMessage();
            return;
        }

        Log.AdminCommand(_runtime.Logger, _context.Id, _context.User, _context.Connection.RemoteEndPoint, command.Text);
        int mark = _out.Length;
        try
        {
            await ExecuteAsync(command).ConfigureAwait(false);
        }
        catch (AdminException ex)
        {
            // Whatever was written before the error is dropped: the client sees the error alone, as from a server.
            _out.Truncate(mark);
            _out.ErrorResponse("ERROR", ex.SqlState, ex.Message, ex.Detail);
        }
    }

    private ValueTask ExecuteAsync(AdminCommand command)
    {
        if (command.Verb == "SHOW")
        {
            Show(command);
            return ValueTask.CompletedTask;
        }

        if (!IsControlVerb(command.Verb))
        {
            throw new AdminException(SqlState.SyntaxError, $"unknown command \"{command.Verb}\"", "SHOW HELP lists the commands of the admin console.");
        }

        if (_role != ConsoleRole.Admin)
        {
            throw new AdminException(SqlState.InsufficientPrivilege,
                $"permission denied: only admin_users may run {command.Verb}; \"{_context.User}\" may only use SHOW");
        }

        return ControlAsync(command);
    }

    private async ValueTask<bool> SendAsync(ReadOnlyMemory<byte> data)
    {
        try
        {
            await _context.Connection.SendAsync(data).ConfigureAwait(false);
            return true;
        }
        catch (Exception)
        {
            _context.CloseReason = "client unexpected eof";
            return false;
        }
    }

    private static string ReadProductVersion()
    {
        var version = typeof(AdminConsole).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
        int plus = version.IndexOf('+', StringComparison.Ordinal);
        return plus < 0 ? version : version[..plus];
    }
}

/// <summary>An error a console command reports to the client; the connection stays usable.</summary>
internal sealed class AdminException(string sqlState, string message, string? detail = null) : Exception(message)
{
    public string SqlState { get; } = sqlState;

    public string? Detail { get; } = detail;
}
