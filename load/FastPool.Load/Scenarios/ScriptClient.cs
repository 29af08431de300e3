using Npgsql;
using NpgsqlTypes;

namespace FastPool.Load.Scenarios;

/// <summary>
/// One simulated client of one target: its own server connection (unless the scenario connects per transaction),
/// its own variables and random stream. Used by one worker at a time, never concurrently.
/// </summary>
internal sealed class ScriptClient : IAsyncDisposable
{
    private readonly Scenario _scenario;
    private readonly NpgsqlDataSource _dataSource;
    private readonly Random _random;
    private readonly long[][] _variables;
    private readonly double _totalWeight;
    private NpgsqlConnection? _connection;
    private NpgsqlCommand[][]? _commands;

    public ScriptClient(Scenario scenario, NpgsqlDataSource dataSource, int clientId, long scale, Random random)
    {
        _scenario = scenario;
        _dataSource = dataSource;
        _random = random;
        _variables = new long[scenario.Scripts.Count][];
        for (var i = 0; i < _variables.Length; i++)
        {
            _variables[i] = new long[scenario.Scripts[i].Script.Variables.Count];
            _variables[i][Script.ScaleIndex] = scale;
            _variables[i][Script.ClientIdIndex] = clientId;
        }

        _totalWeight = scenario.Scripts.Sum(s => s.Weight);
    }

    /// <summary>True when the connection dropped and the client must be replaced.</summary>
    public bool IsBroken => !_scenario.ConnectPerTransaction && _connection is not { State: System.Data.ConnectionState.Open };

    public async Task OpenAsync(CancellationToken ct)
    {
        if (_scenario.ConnectPerTransaction)
        {
            return;
        }

        _connection = await _dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        _commands = await CreateCommandsAsync(_connection, ct).ConfigureAwait(false);
    }

    /// <summary>Runs one transaction: one script picked by weight, all its statements.</summary>
    public async Task ExecuteAsync(CancellationToken ct)
    {
        var scriptIndex = PickScript();
        var script = _scenario.Scripts[scriptIndex].Script;
        var variables = _variables[scriptIndex];
        foreach (var assignment in script.Assignments)
        {
            variables[assignment.Variable] = assignment.Value.Evaluate(variables, _random);
        }

        if (_scenario.ConnectPerTransaction)
        {
            await using var connection = await _dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
            var commands = await CreateCommandsAsync(connection, ct).ConfigureAwait(false);
            await RunStatementsAsync(script, commands[scriptIndex], variables, ct).ConfigureAwait(false);
            return;
        }

        try
        {
            await RunStatementsAsync(script, _commands![scriptIndex], variables, ct).ConfigureAwait(false);
        }
        catch (PostgresException) when (script.Statements.Count > 1 && _connection is { State: System.Data.ConnectionState.Open })
        {
            // A failed statement inside the script's BEGIN leaves the session in an aborted transaction.
            await using var rollback = new NpgsqlCommand("ROLLBACK", _connection);
            await rollback.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_connection is not null)
        {
            await _connection.DisposeAsync().ConfigureAwait(false);
            _connection = null;
        }
    }

    private async Task RunStatementsAsync(Script script, NpgsqlCommand[] commands, long[] variables, CancellationToken ct)
    {
        for (var i = 0; i < commands.Length; i++)
        {
            var statement = script.Statements[i];
            var command = commands[i];
            if (_scenario.Mode == StatementMode.Inline)
            {
                command.CommandText = statement.InlineSql(variables);
            }
            else
            {
                for (var p = 0; p < statement.ParameterVariables.Length; p++)
                {
                    ((NpgsqlParameter<long>)command.Parameters[p]).TypedValue = variables[statement.ParameterVariables[p]];
                }
            }

            // ExecuteNonQuery still reads (and drops) every row the server sends.
            await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
    }

    private async Task<NpgsqlCommand[][]> CreateCommandsAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        var result = new NpgsqlCommand[_scenario.Scripts.Count][];
        for (var s = 0; s < result.Length; s++)
        {
            var statements = _scenario.Scripts[s].Script.Statements;
            result[s] = new NpgsqlCommand[statements.Count];
            for (var i = 0; i < statements.Count; i++)
            {
                result[s][i] = CreateCommand(statements[i], connection, _scenario.Mode);
                if (_scenario.Mode == StatementMode.Prepared)
                {
                    await result[s][i].PrepareAsync(ct).ConfigureAwait(false);
                }
            }
        }

        return result;
    }

    /// <summary>A command for one statement: positional <c>$n</c> bigint parameters, or none in inline mode.</summary>
    internal static NpgsqlCommand CreateCommand(ScriptStatement statement, NpgsqlConnection connection, StatementMode mode)
    {
        var command = new NpgsqlCommand(mode == StatementMode.Inline ? string.Empty : statement.ParameterizedSql, connection);
        if (mode != StatementMode.Inline)
        {
            foreach (var _ in statement.ParameterVariables)
            {
                command.Parameters.Add(new NpgsqlParameter<long> { NpgsqlDbType = NpgsqlDbType.Bigint });
            }
        }

        return command;
    }

    private int PickScript()
    {
        if (_scenario.Scripts.Count == 1)
        {
            return 0;
        }

        var x = _random.NextDouble() * _totalWeight;
        for (var i = 0; i < _scenario.Scripts.Count; i++)
        {
            x -= _scenario.Scripts[i].Weight;
            if (x < 0)
            {
                return i;
            }
        }

        return _scenario.Scripts.Count - 1;
    }
}
