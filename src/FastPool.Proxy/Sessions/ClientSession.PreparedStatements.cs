using System.Buffers;
using System.IO.Pipelines;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Pooling;
using FastPool.Proxy.Transport;

namespace FastPool.Proxy.Sessions;

/// <summary>
/// The session's side of protocol-level prepared statements in the pooling modes (see <see cref="PreparedStatements"/>):
/// switched on by max_prepared_statements, and the sends of scans in which messages were rewritten.
/// </summary>
internal sealed partial class ClientSession : IStatementOwner
{
    private PreparedStatements? _prepared;

    /// <summary>The client's protocol-level prepared statements FastPool keeps (SHOW CLIENTS); 0 when the server keeps them.</summary>
    public int PreparedStatementCount => _prepared?.Count ?? 0;

    public string? SearchPath =>
        _settings.TryGetValue("search_path", out var set) ? set : _reported.GetValueOrDefault("search_path");

    public void PinForStatement()
    {
        if ((_pinMask & PinReasons.Prepare) != 0)
        {
            SetPinned(_pinned | PinReasons.Prepare);
        }
    }

    /// <remarks>Routing already saw the statement at its Bind (<see cref="InspectBind"/>): only its effect on the session is followed.</remarks>
    public void InspectStatement(in ReadOnlySequence<byte> text) => InspectState(text, namedStatement: false);

    public bool InspectsEveryStatement => _runtime.Cache is not null;

    /// <summary>
    /// max_prepared_statements = 0 keeps named statements on the client's server, which then pins it; except in
    /// session pooling over several nodes, where FastPool keeps them anyway (with the default cap per server):
    /// there a named statement left to the server would pin the whole session to the primary, and nothing of it
    /// would be balanced, while the client owns its servers and no other client sees FastPool's names.
    /// </summary>
    private void InitPreparedStatements()
    {
        int max = _context.Config.MaxPreparedStatements;
        if (max <= 0 && _reserving)
        {
            max = ProxyConfig.DefaultMaxPreparedStatements;
        }

        if (max > 0)
        {
            _prepared = new PreparedStatements(this, max);
            _prepared.UseKnown(KnownStatements.For(_runtime.Pools.GetPool(Database, DatabaseName, User, Topology.Nodes[0])));
            _scanner.EnablePreparedStatements(_prepared);
            if (Topology.Nodes.Length > 1)
            {
                _scanner.EnableBindRouting();
            }
        }
    }

    /// <summary>
    /// With no server held: answers a batch of Parses of statements known to the pool without taking a server
    /// (see <see cref="KnownStatements"/>). Consumes what it answered; on <see cref="LocalAnswer.NeedMore"/> it
    /// asks for more input; on <see cref="LocalAnswer.No"/> it leaves the input alone.
    /// </summary>
    private async ValueTask<LocalAnswer> AnswerWithoutServerAsync(PipeReader input, ReadOnlySequence<byte> buffer)
    {
        var answer = _prepared!.TryAnswerWithoutServer(buffer, out long consumed);
        if (answer == LocalAnswer.NeedMore)
        {
            input.AdvanceTo(buffer.Start, buffer.End);
            return answer;
        }

        if (answer == LocalAnswer.No)
        {
            return answer;
        }

        input.AdvanceTo(buffer.GetPosition(consumed));

        // Answered here, but an answer all the same: SUSPEND holds it like one from a server.
        await BeginClientForwardAsync(null).ConfigureAwait(false);
        try
        {
            await _client.SendAsync(_prepared.LocalReply).ConfigureAwait(false);
        }
        catch (Exception)
        {
            return LocalAnswer.ClientGone;
        }
        finally
        {
            EndClientForward();
        }

        return answer;
    }

    /// <summary>The scanned client bytes up to <paramref name="forward"/>, as rewritten.</summary>
    private ValueTask SendToServerAsync(Connection server, in ReadOnlySequence<byte> buffer, long forward) =>
        _prepared is null || _prepared.ToServer.IsEmpty
            ? server.SendAsync(buffer.Slice(0, forward))
            : _prepared.ToServer.SendAsync(server, buffer, forward);

    /// <summary>The scanned server bytes up to <paramref name="forward"/>, without the replies to what FastPool added.</summary>
    private ValueTask SendToClientAsync(in ReadOnlySequence<byte> buffer, long forward) =>
        _prepared is null || _prepared.ToClient.IsEmpty
            ? _client.SendAsync(buffer.Slice(0, forward))
            : _prepared.ToClient.SendAsync(_client, buffer, forward);

    /// <summary>The server scan; with prepared statements under the swap lock, as the replies change their bookkeeping.</summary>
    private bool ScanFromServer(in ReadOnlySequence<byte> buffer, ServerProtocolState server, out long forward, out int transactions, out ServerStop stop)
    {
        if (_prepared is null)
        {
            return _scanner.ScanFromServer(buffer, server, out forward, out transactions, out stop);
        }

        lock (_swap!)
        {
            return _scanner.ScanFromServer(buffer, server, out forward, out transactions, out stop);
        }
    }
}
