using System.Buffers;
using FastPool.Protocol;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Pipeline;
using FastPool.Proxy.Pooling;
using RouteTraits = FastPool.Routing.Classification.QueryTraits;

namespace FastPool.Proxy.Sessions;

/// <summary>
/// The leading reads of an explicit transaction on a standby (Pgpool-II's <c>disable_load_balance_on_write</c>:
/// reads are balanced until the transaction's first write). A transaction that starts with a READ COMMITTED
/// BEGIN and reads starts on a standby. Before the first statement that a standby cannot run, or that ties
/// the transaction to its server (a write, SET, SAVEPOINT, a cursor, LOCK...), FastPool waits for the standby
/// to answer everything sent so far, ends the standby's part (ROLLBACK: it only read), starts a transaction on
/// the primary and sends the statement and the rest of the transaction there.
/// <para>
/// Why that is the transaction the client asked for: in READ COMMITTED every statement takes its own snapshot
/// (PostgreSQL docs 13.2.1 "Read Committed Isolation Level"), so reads that ran before the write in another
/// server's transaction saw data at least as fresh as the transaction's start, which is all READ COMMITTED
/// promises; nothing else of the standby's part (no lock, no cursor, no setting, no savepoint) outlives it.
/// REPEATABLE READ and SERIALIZABLE keep one snapshot for the whole transaction, which cannot span two servers:
/// such transactions, and BEGIN ... READ WRITE, run on the primary as a whole. An error on the standby aborts
/// the client's transaction there (PostgreSQL answers what follows with 25P02 until ROLLBACK), and it is not
/// moved. The units of an extended-protocol batch (messages up to a Sync) are looked at whole before any of
/// them is sent, so a batch that mixes reads and a write goes to the primary as a whole.
/// </para>
/// </summary>
internal sealed partial class ClientSession
{
    // What a statement of a transaction's standby part may be: reads (no trait at all), BEGIN, COMMIT/ROLLBACK.
    private const RouteTraits SplitSafeTraits = RouteTraits.TransactionStart | RouteTraits.TransactionEnd | RouteTraits.MultipleStatements;

    // The primary's part starts READ COMMITTED, whatever the server's default; after the standby ran a query, a
    // query runs in it too, so a later SET TRANSACTION ISOLATION LEVEL fails as it would have (25001).
    private const string SplitBegin = "BEGIN ISOLATION LEVEL READ COMMITTED";
    private const string SplitBeginQueried = "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT";

    /// <summary>The unit DecideIntent routed is an explicit transaction's start that may begin on a standby.</summary>
    private bool _splitIntent;

    /// <summary>The client's transaction runs on a standby until it needs the primary (only the client pump writes it).</summary>
    private bool _split;

    /// <summary>A statement other than BEGIN ran in the standby's part.</summary>
    private bool _splitQueried;

    /// <summary>
    /// The client's last explicit transaction wrote before it read (pgbench's TPC-B script: BEGIN; UPDATE ...):
    /// its next BEGIN goes to the primary at once instead of costing a standby round trip and a move.
    /// </summary>
    private bool _writesFirst;

    /// <summary>A transaction started on the primary because of <see cref="_writesFirst"/>: its first statement updates it.</summary>
    private bool _watchFirstStatement;

    private enum SplitLook : byte
    {
        /// <summary>Every whole unit may run on the standby.</summary>
        Standby,

        /// <summary>The unit after the safe bytes needs the primary.</summary>
        Primary,

        /// <summary>The unit after the safe bytes is not whole yet.</summary>
        NeedMore,
    }

    private enum SplitOutcome : byte
    {
        /// <summary>Go on scanning (on the primary now, or on the standby whose transaction failed or ended).</summary>
        Continue,

        /// <summary>No primary: the client was told why.</summary>
        AcquireFailed,

        /// <summary>The standby failed meanwhile; the stop reason says how.</summary>
        Stopped,
    }

    /// <summary>
    /// The first unit of a transaction that needs the primary: whether it is a BEGIN whose leading reads may run on a
    /// standby instead (only BEGIN, reads and COMMIT in it, READ COMMITTED as far as FastPool can tell).
    /// </summary>
    private bool MaySplit(RouteTraits traits) =>
        (traits & RouteTraits.TransactionStart) != 0
        && (traits & ~SplitSafeTraits) == 0
        && _mode != PoolMode.Statement
        && DefaultIsolationReadCommitted();

    /// <summary>
    /// Whether a plain BEGIN is READ COMMITTED by the client's own settings (startup parameters, SET
    /// default_transaction_isolation); the server's default is checked once a standby is taken
    /// (<see cref="SplitIsolationAllowedAsync"/>).
    /// </summary>
    private bool DefaultIsolationReadCommitted()
    {
        foreach (var kv in _settings)
        {
            if (string.Equals(kv.Key, "default_transaction_isolation", StringComparison.OrdinalIgnoreCase))
            {
                // The value is kept as the statement that sets it: "read committed" or "read uncommitted" (the same in PostgreSQL).
                return kv.Value.Contains("committed", StringComparison.OrdinalIgnoreCase);
            }
        }

        return true;
    }

    /// <summary>
    /// Whether the client made SERIALIZABLE its default (startup parameters, SET default_transaction_isolation): then
    /// even a single read is a serializable transaction, which a standby refuses (PostgreSQL docs 27.4.1).
    /// </summary>
    private bool DefaultIsolationSerializable()
    {
        // Setting names are kept lower-cased (InitPooling, SqlClassifier): one lookup, asked on every transaction.
        return _settings.Count != 0 && _settings.TryGetValue("default_transaction_isolation", out var value)
            && value.Contains("serializable", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>
    /// During a transaction's standby part: how many bytes at the start of <paramref name="buffer"/> are whole units
    /// (a Query, or extended messages up to a Sync or Flush) the standby may run, and what follows them.
    /// </summary>
    private SplitLook SplitLookahead(in ReadOnlySequence<byte> buffer, out long safe)
    {
        safe = 0;
        var reader = new SequenceReader<byte>(buffer);
        var traits = RouteTraits.None;
        while (true)
        {
            if (!MessageHeader.TryPeek(ref reader, out var header))
            {
                return reader.Consumed == safe && reader.Remaining == 0 ? SplitLook.Standby : SplitLook.NeedMore;
            }

            if (header.Length < 4)
            {
                // Malformed: the scanner says so.
                safe = buffer.Length;
                return SplitLook.Standby;
            }

            if (header.TotalLength > ForwardingScanner.InspectLimit)
            {
                // Too large to look at: the primary, the safe default.
                return SplitLook.Primary;
            }

            if (reader.Remaining < header.TotalLength)
            {
                return SplitLook.NeedMore;
            }

            var code = (FrontendCode)header.Code;
            switch (code)
            {
                case FrontendCode.Query:
                case FrontendCode.Parse:
                    var body = reader.UnreadSequence.Slice(MessageHeader.Size, header.BodyLength);
                    if (!ForwardingScanner.TryGetQueryText(body, code == FrontendCode.Parse, out var text, out bool named) || (named && _prepared is null))
                    {
                        return SplitLook.Primary;
                    }

                    traits |= ClassifyForRouting(text);
                    break;
                case FrontendCode.Bind:
                    if (_prepared is not null)
                    {
                        _prepared.TryFindBound(reader, header, out var bound, out _);
                        if (bound is not null)
                        {
                            traits |= TraitsOf(bound);
                        }
                    }

                    break;
                case FrontendCode.Describe:
                case FrontendCode.Execute:
                case FrontendCode.Close:
                case FrontendCode.Sync:
                case FrontendCode.Flush:
                    break;
                case FrontendCode.Terminate:
                    safe = buffer.Length;
                    return SplitLook.Standby;
                default:
                    // Function calls, COPY data: the primary.
                    return SplitLook.Primary;
            }

            if ((traits & ~SplitSafeTraits) != 0)
            {
                return SplitLook.Primary;
            }

            reader.Advance(header.TotalLength);
            if (code is FrontendCode.Query or FrontendCode.Sync or FrontendCode.Flush)
            {
                safe = reader.Consumed;
                traits = RouteTraits.None;
            }
        }
    }

    /// <summary>
    /// On the client pump, before a unit that needs the primary during a transaction's standby part: waits for the
    /// standby to answer what it was sent, then moves the transaction to the primary (see the type's remarks).
    /// </summary>
    private async ValueTask<SplitOutcome> MoveToPrimaryAsync(ServerConnection standby)
    {
        while (true)
        {
            Task answered;
            lock (_swap!)
            {
                if (_server != standby || Volatile.Read(ref _serverFailure) >= 0)
                {
                    // Handed back (the transaction ended) or failed: the pump loop finds out which.
                    _split = false;
                    return SplitOutcome.Continue;
                }

                if (standby.Protocol.UnsyncedExtended)
                {
                    // Extended messages without their Sync yet: the standby answers nothing more until it comes, so the
                    // transaction cannot move now. The standby refuses the write (25006), as it refuses one pipelined
                    // behind a read (README).
                    _split = false;
                    return SplitOutcome.Continue;
                }

                // Made before the check: the server pump signals after it forwards, so no answer can slip between.
                answered = (_hold ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
                if (standby.Protocol.AtMessageBoundary && _scanner.ServerAtBoundary && _scanner.ClientAtBoundary)
                {
                    if (standby.TransactionStatus != TransactionStatus.InTransaction)
                    {
                        // An error aborted the transaction on the standby, which answers the rest (25P02) until
                        // ROLLBACK; or it is already over, and the statement is routed as any other.
                        _split = false;
                        return SplitOutcome.Continue;
                    }

                    _server = null;
                    break;
                }
            }

            await answered.ConfigureAwait(false);
        }

        _split = false;
        _writesFirst = !_splitQueried;
        _acquiring = true;
        try
        {
            // The standby's last answer may still be on its way to the client: its pump ends first.
            standby.Connection.Input.CancelPendingRead();
            _serverPumpStarted = false;
            var exit = await _serverPump.ConfigureAwait(false);
            if (exit != PumpExit.Cancelled)
            {
                standby.Broken = true;
                standby.Pool.Close(standby);
                return SplitOutcome.Stopped;
            }

            await EndStandbyPartAsync(standby).ConfigureAwait(false);

            _splitIntent = false;
            _query.CacheKeyLength = 0;
            await PrepareRouteAsync(RouteIntent.Primary).ConfigureAwait(false);
            var primary = await AcquireAsync().ConfigureAwait(false);
            if (primary is null)
            {
                return SplitOutcome.AcquireFailed;
            }

            ErrorFields? error;
            try
            {
                error = await MessageIo.RunQueryAsync(primary, _context.Builder, _splitQueried ? SplitBeginQueried : SplitBegin, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                primary.Broken = true;
                error = new ErrorFields { Code = SqlState.ConnectionFailure, Message = "server connection failed: " + ServerConnector.Describe(ex) };
            }

            if (error is not null || primary.TransactionStatus != TransactionStatus.InTransaction)
            {
                await _context.SendErrorAsync(error?.Code ?? SqlState.ProtocolViolation, error?.Message ?? "could not start the transaction on the primary", "FATAL").ConfigureAwait(false);
                await ReleaseAsync(primary).ConfigureAwait(false);
                return SplitOutcome.AcquireFailed;
            }

            Log.TransactionMovedToPrimary(_runtime.Logger, _context.Id, standby.Node.Id, primary.Node.Id);
            _capture?.Abandon();
            Attached(primary);
            _primaryBlock = true;
            _errorsAtStart = primary.Protocol.Errors;
            _prepared?.OnAttach(primary);
            _serverPump = PooledServerToClientAsync(primary);
            _serverPumpStarted = true;
            return SplitOutcome.Continue;
        }
        finally
        {
            _acquiring = false;
            NoteActivity();
        }
    }

    /// <summary>
    /// Before a transaction's standby part starts on <paramref name="standby"/>: whether a plain BEGIN there is READ
    /// COMMITTED. The client's own default_transaction_isolation was looked at already (<see cref="MaySplit"/>);
    /// one set in postgresql.conf or with ALTER ROLE/DATABASE is asked of the server once per pool (SHOW, PostgreSQL
    /// docs 19.11.1 "Statement Behavior"), on the client's time: the server is idle and its settings are the client's.
    /// </summary>
    private async ValueTask<bool> SplitIsolationAllowedAsync(ServerConnection standby)
    {
        if (HasOwnIsolationDefault())
        {
            // The client's own default, read committed (MaySplit), is what the server has now.
            return true;
        }

        if (standby.Pool.DefaultReadCommitted is { } known)
        {
            return known;
        }

        try
        {
            using var cts = new CancellationTokenSource(s_resetTimeout);
            var row = await MessageIo.QueryFirstRowAsync(standby, _context.Builder, "SHOW default_transaction_isolation", cts.Token).ConfigureAwait(false);
            bool readCommitted = row[0] is { } level && level.Contains("committed", StringComparison.OrdinalIgnoreCase);
            standby.Pool.DefaultReadCommitted = readCommitted;
            return readCommitted;
        }
        catch (ServerException)
        {
            return false;
        }
        catch (Exception)
        {
            // Its state is unknown: closed when it goes back, and this transaction runs on the primary.
            standby.Broken = true;
            return false;
        }
    }

    private bool HasOwnIsolationDefault()
    {
        foreach (var kv in _settings)
        {
            if (string.Equals(kv.Key, "default_transaction_isolation", StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// The standby taken for a transaction's standby part may not serve it (its default isolation is not READ
    /// COMMITTED): it goes back untouched, and the transaction is routed to the primary as a whole.
    /// </summary>
    private async ValueTask<ServerConnection?> RerouteSplitToPrimaryAsync(ServerConnection standby)
    {
        bool keep = !standby.Broken;
        lock (_swap!)
        {
            _server = null;
            if (keep && _reserving)
            {
                Park(standby);
            }
        }

        if (!keep)
        {
            standby.Pool.Close(standby);
        }
        else if (!_reserving)
        {
            standby.Pool.Release(standby);
        }

        standby.Node.CountSelect(-1);
        _splitIntent = false;
        _query.CacheKeyLength = 0;
        await PrepareRouteAsync(RouteIntent.Primary).ConfigureAwait(false);
        return await AcquireAsync().ConfigureAwait(false);
    }

    /// <summary>The standby's part only read: it is rolled back, and the server goes back to the pool (or to the client, in session pooling).</summary>
    private async Task EndStandbyPartAsync(ServerConnection standby)
    {
        try
        {
            using var cts = new CancellationTokenSource(s_resetTimeout);
            var error = await MessageIo.RunQueryAsync(standby, _context.Builder, "ROLLBACK", cts.Token).ConfigureAwait(false);
            if (error is null && standby.TransactionStatus == TransactionStatus.Idle && !standby.Broken)
            {
                if (_reserving)
                {
                    lock (_swap!)
                    {
                        Park(standby);
                    }
                }
                else
                {
                    standby.Pool.Release(standby);
                }

                return;
            }
        }
        catch (Exception)
        {
            standby.Broken = true;
        }

        standby.Pool.Close(standby);
    }
}
