using System.Buffers;
using System.Text;
using System.Text.RegularExpressions;
using FastPool.Protocol;
using FastPool.Proxy.Configuration;
using FastPool.Proxy.Pipeline;
using FastPool.Proxy.Pooling;
using FastPool.Proxy.Topology;
using RouteTraits = FastPool.Routing.Classification.QueryTraits;
using StatementClassifier = FastPool.Routing.Classification.SqlClassifier;

namespace FastPool.Proxy.Sessions;

/// <summary>
/// Replication-aware routing in the transaction-pooling modes, where a client takes a server per transaction, and
/// in session pooling over several nodes, where it keeps one per node (ClientSession.Reserving.cs): the first
/// statement (a Query, or the Parses and Binds of kept named statements up to the first Sync of an extended batch)
/// decides whether the transaction may run on a standby (<see cref="RoutingStage"/> picks which). A statement that
/// needs the primary and arrives while the client's read still holds a standby is held back until that read's
/// transaction ends and the standby is handed back; it is then routed on its own. An explicit READ COMMITTED
/// transaction starts on a standby and moves to the primary before its first write (ClientSession.Split.cs);
/// other explicit transactions (BEGIN without READ ONLY) run on the primary as a whole. After a write commits, read_your_writes
/// asks the primary for its WAL insert position (PostgreSQL docs 9.27.3 "Backup Control Functions"), and the
/// client's reads go only to standbys that have replayed that far.
/// </summary>
internal sealed partial class ClientSession
{
    private const RouteTraits PrimaryTraits =
        RouteTraits.Write | RouteTraits.NoLoadBalanceHint | RouteTraits.Prepare | RouteTraits.HoldCursor
        | RouteTraits.SessionAuthorization | RouteTraits.Listen | RouteTraits.TemporaryObject | RouteTraits.AdvisoryLock
        | RouteTraits.SerializableTransaction;

    // PostgreSQL docs 9.27.3: the insert position is at or past the end of every commit record already written.
    private const string WalPositionQuery = NodeMonitor.WalPositionQuery;

    private RoutingSettings _routing = new();
    private bool _balanced;
    private bool _attachedForRead;
    private bool _readOnlyBlock;
    private bool _primaryBlock;
    private bool _wroteInTransaction;
    private bool _primaryOnly;
    private bool _idleNotDetached;

    // The client pump forwarded something to the attached server since it was attached (AwaitsHandBack).
    private bool _sentSinceAttach;
    private bool _bypassHold;
    private TaskCompletionSource? _hold;
    private Task? _walFetch;
    private long _walFetchNumber;
    private MessageBuilder? _walBuilder;
    private byte[] _routeScratch = [];
    private char[] _patternScratch = [];

    /// <summary>The application_name the client logged in with (app_name_redirect_preference_list matches it, as Pgpool-II does).</summary>
    public string? ApplicationName => _context.Startup?.GetParameter("application_name");

    /// <summary>Outcome of looking at what a client sent before it has a server.</summary>
    private enum Lookahead : byte
    {
        Decided,
        NeedMore,
    }

    /// <summary>Reads the routing settings once per transaction (a reload may change them between transactions).</summary>
    private void RefreshRouting()
    {
        _routing = _runtime.Config.FastPool.Routing;
        _balanced = Topology.Nodes.Length > 1;
    }

    /// <summary>
    /// Decides where the client's next transaction runs from the messages at the start of <paramref name="buffer"/>:
    /// a Query, or Parse/Bind/Describe/Execute/Close up to a Sync or Flush. Reads need every statement of that unit
    /// to be a read; anything else, or anything not seen whole, goes to the primary.
    /// </summary>
    private Lookahead DecideIntent(in ReadOnlySequence<byte> buffer, out RouteIntent intent)
    {
        intent = RouteIntent.Primary;
        _splitIntent = false;
        _watchFirstStatement = false;
        RefreshRouting();
        if (!_balanced || !_routing.LoadBalanceMode || _primaryOnly || DefaultIsolationSerializable())
        {
            if (_balanced && !_routing.LoadBalanceMode)
            {
                CountUnbalancedRead(buffer);
            }

            return Lookahead.Decided;
        }

        var reader = new SequenceReader<byte>(buffer);
        var traits = RouteTraits.None;
        bool sawStatement = false;
        while (true)
        {
            if (!MessageHeader.TryPeek(ref reader, out var header))
            {
                return buffer.Length < ForwardingScanner.InspectLimit ? Lookahead.NeedMore : Lookahead.Decided;
            }

            if (header.Length < 4 || header.TotalLength > ForwardingScanner.InspectLimit)
            {
                // Malformed (the scanner will say so) or too large to wait for: the primary.
                return Lookahead.Decided;
            }

            if (reader.Remaining < header.TotalLength)
            {
                return buffer.Length < ForwardingScanner.InspectLimit ? Lookahead.NeedMore : Lookahead.Decided;
            }

            var code = (FrontendCode)header.Code;
            switch (code)
            {
                case FrontendCode.Query:
                case FrontendCode.Parse:
                    var body = reader.UnreadSequence.Slice(MessageHeader.Size, header.BodyLength);
                    if (!ForwardingScanner.TryGetQueryText(body, code == FrontendCode.Parse, out var text, out bool named) || (named && _prepared is null))
                    {
                        // Without max_prepared_statements a named statement lives on the server that parsed it, and
                        // the client is pinned there: the primary. With it, FastPool prepares it wherever it runs.
                        return Lookahead.Decided;
                    }

                    traits |= ClassifyForRouting(text);
                    sawStatement = true;
                    if (code == FrontendCode.Query)
                    {
                        intent = IntentOf(traits, buffer, reader.Consumed + header.TotalLength);
                        return Lookahead.Decided;
                    }

                    break;
                case FrontendCode.Bind:
                    // A Bind of the unnamed statement into the unnamed portal (the body starts with two empty names,
                    // PostgreSQL docs 55.7 "Message Formats", Bind) has no kept statement to look up.
                    if (_prepared is not null && !(reader.TryPeek(MessageHeader.Size, out byte portal) && portal == 0
                        && reader.TryPeek(MessageHeader.Size + 1, out byte statementName) && statementName == 0))
                    {
                        // A kept named statement executed without its Parse in this batch: routed as its text was.
                        _prepared.TryFindBound(reader, header, out var bound, out bool boundNamed);
                        if (bound is not null)
                        {
                            traits |= TraitsOf(bound);
                            sawStatement = true;
                        }
                        else if (boundNamed && !ParsedInBatch(buffer, reader.Consumed))
                        {
                            // Not a statement of this client's: the server says so, from the primary.
                            return Lookahead.Decided;
                        }
                    }

                    break;
                case FrontendCode.Describe:
                case FrontendCode.Execute:
                case FrontendCode.Close:
                    break;
                case FrontendCode.Sync:
                case FrontendCode.Flush:
                    intent = sawStatement ? IntentOf(traits, buffer, reader.Consumed + header.TotalLength) : RouteIntent.Primary;
                    return Lookahead.Decided;
                default:
                    // Function calls, COPY data, anything else: the primary.
                    return Lookahead.Decided;
            }

            reader.Advance(header.TotalLength);
        }
    }

    /// <summary>
    /// With load_balance_mode off every statement goes to the primary, and SHOW POOL_NODES still counts the reads
    /// among them there, as Pgpool-II's select_cnt counts the SELECTs issued to each node. One count per routed
    /// unit, as with balancing on: a simple Query, or a Parse whose batch follows.
    /// </summary>
    private void CountUnbalancedRead(in ReadOnlySequence<byte> buffer)
    {
        var reader = new SequenceReader<byte>(buffer);
        if (!MessageHeader.TryPeek(ref reader, out var header) || header.Length < 4 || reader.Remaining < header.TotalLength
            || (header.Code != (byte)FrontendCode.Query && header.Code != (byte)FrontendCode.Parse))
        {
            return;
        }

        var body = reader.UnreadSequence.Slice(MessageHeader.Size, header.BodyLength);
        if (ForwardingScanner.TryGetQueryText(body, header.Code == (byte)FrontendCode.Parse, out var text, out _))
        {
            CountUnbalancedStatement(text);
        }
    }

    /// <summary>A statement of an unbalanced session (session pooling, load_balance_mode off at login) that reads.</summary>
    internal void CountUnbalancedStatement(in ReadOnlySequence<byte> sql)
    {
        _routing = _runtime.Config.FastPool.Routing;
        if (!NeedsPrimary(ClassifyForRouting(sql)))
        {
            Topology.Primary?.CountSelect();
        }
    }

    /// <summary>
    /// Reads go to a standby; so does a READ COMMITTED transaction that starts by reading (ClientSession.Split.cs),
    /// unless what the client already sent after its first unit (from <paramref name="unitEnd"/> on) needs the
    /// primary: BEGIN pipelined with a write (as Npgsql sends it) goes to the primary at once, not by way of a standby.
    /// </summary>
    private RouteIntent IntentOf(RouteTraits traits, in ReadOnlySequence<byte> buffer, long unitEnd)
    {
        if (!NeedsPrimary(traits))
        {
            return RouteIntent.Read;
        }

        _splitIntent = MaySplit(traits) && SplitLookahead(buffer.Slice(unitEnd), out _) != SplitLook.Primary;
        if (_splitIntent && _writesFirst)
        {
            // This client's last transaction wrote before it read: this one starts on the primary, and its first
            // statement says whether the next may start on a standby again.
            _splitIntent = false;
            _watchFirstStatement = true;
        }

        return _splitIntent ? RouteIntent.Read : RouteIntent.Primary;
    }

    /// <summary>Whether a named Parse comes before <paramref name="end"/> in <paramref name="buffer"/> (its text was classified with the batch).</summary>
    private static bool ParsedInBatch(in ReadOnlySequence<byte> buffer, long end)
    {
        var reader = new SequenceReader<byte>(buffer.Slice(0, end));
        while (MessageHeader.TryPeek(ref reader, out var header) && reader.Remaining >= header.TotalLength)
        {
            if (header.Code == (byte)FrontendCode.Parse && header.BodyLength > 0 && reader.TryPeek(MessageHeader.Size, out byte first) && first != 0)
            {
                return true;
            }

            reader.Advance(header.TotalLength);
        }

        return false;
    }

    private static bool NeedsPrimary(RouteTraits traits) =>
        (traits & PrimaryTraits) != 0
        || ((traits & RouteTraits.TransactionStart) != 0 && (traits & RouteTraits.ReadOnlyTransaction) == 0);

    /// <summary>The statement classifier with this configuration's function lists, plus primary_routing_query_pattern_list.</summary>
    private const int LastRouteTextLimit = 4096;
    private byte[] _lastRouteText = [];
    private int _lastRouteLength = -1;
    private RouteTraits _lastRouteTraits;
    private object? _lastRouteSettings;

    private RouteTraits ClassifyForRouting(in ReadOnlySequence<byte> sql) => ClassifyForRouting(Contiguous(sql, ref _routeScratch));

    /// <remarks>
    /// The first statement of a transaction is classified when it is routed and again when the scanner forwards
    /// it: the last text and its traits are kept (compared byte for byte, under the same settings), so the second
    /// look is a memcmp instead of a lex.
    /// </remarks>
    private RouteTraits ClassifyForRouting(ReadOnlySpan<byte> text)
    {
        if (text.Length == _lastRouteLength && ReferenceEquals(_lastRouteSettings, _routing) && text.SequenceEqual(_lastRouteText.AsSpan(0, text.Length)))
        {
            return _lastRouteTraits;
        }

        var traits = ClassifyUncached(text);
        if (text.Length <= LastRouteTextLimit)
        {
            if (_lastRouteText.Length < text.Length)
            {
                _lastRouteText = new byte[Math.Max(text.Length, 256)];
            }

            text.CopyTo(_lastRouteText);
            _lastRouteLength = text.Length;
            _lastRouteTraits = traits;
            _lastRouteSettings = _routing;
        }

        return traits;
    }

    /// <summary>Whether the text names default_transaction_isolation (or transaction_isolation), in any case.</summary>
    private static bool MentionsIsolationDefault(ReadOnlySpan<byte> text)
    {
        // Found by its underscore, a vectorized search: ordinary statements have few, most letters are not one.
        var word = "transaction_isolation"u8;
        const int Underscore = 11;
        for (int from = Underscore; from < text.Length;)
        {
            int found = text[from..].IndexOf((byte)'_');
            if (found < 0)
            {
                return false;
            }

            int start = from + found - Underscore;
            if (start + word.Length <= text.Length && System.Text.Ascii.EqualsIgnoreCase(text.Slice(start, word.Length), word))
            {
                return true;
            }

            from += found + 1;
        }

        return false;
    }

    private RouteTraits ClassifyUncached(ReadOnlySpan<byte> text)
    {
        var traits = StatementClassifier.Classify(text, _routing.Classifier);
        if ((traits & RouteTraits.Write) == 0 && MentionsIsolationDefault(text))
        {
            // SET default_transaction_isolation runs where the client's transactions will: SERIALIZABLE on a standby
            // would fail every later statement on that connection, the next client's settings included.
            traits |= RouteTraits.Write;
        }

        if ((traits & (RouteTraits.Write | RouteTraits.SessionSetting)) == RouteTraits.SessionSetting)
        {
            // set_config(name, value, false) pins the client to the server that ran it (FastPool cannot carry it to
            // another): that must be the primary, or every write of the session after it would fail as read-only.
            SqlClassifier.Classify(text, out var pins);
            if ((pins & PinReasons.Untracked) != 0)
            {
                traits |= RouteTraits.Write;
            }
        }

        var patterns = _routing.PrimaryRoutingPatterns;
        if (patterns.Count == 0 || NeedsPrimary(traits))
        {
            return traits;
        }

        // Regex needs characters: decoded into a scratch buffer kept by the session, so a match allocates nothing.
        int max = Encoding.UTF8.GetMaxCharCount(text.Length);
        if (_patternScratch.Length < max)
        {
            _patternScratch = new char[Math.Max(max, 1024)];
        }

        int chars = Encoding.UTF8.GetChars(text, _patternScratch);

        // The patterns match the whole statement (anchored, as in Pgpool-II), without the blanks and the ';' around it.
        var span = _patternScratch.AsSpan(0, chars).Trim().TrimEnd(';').TrimEnd();
        try
        {
            for (int i = 0; i < patterns.Count; i++)
            {
                if (patterns[i].IsMatch(span))
                {
                    return traits | RouteTraits.Write;
                }
            }
        }
        catch (RegexMatchTimeoutException)
        {
            // A pattern that cannot decide in time decides for the primary.
            return traits | RouteTraits.Write;
        }

        return traits;
    }

    /// <summary>
    /// Called for each Query and Parse while the client has a server (under the swap lock, from the scanner):
    /// false holds the message back because it needs the primary while the client's read holds a standby.
    /// Also notes what later routing depends on: writes (read_your_writes, disable_load_balance_on_write) and
    /// temporary tables.
    /// </summary>
    private bool RouteCheck(in ReadOnlySequence<byte> sql, bool namedStatement)
    {
        if (!_balanced)
        {
            return true;
        }

        var traits = ClassifyForRouting(sql);
        if (_attachedForRead && _readOnlyBlock && (traits & RouteTraits.TransactionEnd) != 0 && EndsAndChains(Contiguous(sql, ref _routeScratch)))
        {
            // COMMIT / ROLLBACK AND CHAIN starts the next transaction at once, READ ONLY like the last, on the same
            // standby: it stays a read-only block, where a write gets its error (25006) from the standby. Taken as
            // the block's end, the write would wait for the standby to end a transaction that never ends.
            return RouteCheck(traits & ~RouteTraits.TransactionEnd, namedStatement);
        }

        return RouteCheck(traits, namedStatement);
    }

    /// <summary>Whether a transaction-ending statement says AND CHAIN (not AND NO CHAIN): PostgreSQL docs, COMMIT and ROLLBACK.</summary>
    private static bool EndsAndChains(ReadOnlySpan<byte> text)
    {
        // Word by word (letters only): the statement is a few words, and "and chain" ends it.
        ReadOnlySpan<byte> previous = default;
        int i = 0;
        while (i < text.Length)
        {
            if ((uint)((text[i] | 0x20) - 'a') >= 26)
            {
                i++;
                continue;
            }

            int start = i;
            while (i < text.Length && (uint)((text[i] | 0x20) - 'a') < 26)
            {
                i++;
            }

            var word = text[start..i];
            if (System.Text.Ascii.EqualsIgnoreCase(word, "chain"u8) && System.Text.Ascii.EqualsIgnoreCase(previous, "and"u8))
            {
                return true;
            }

            previous = word;
        }

        return false;
    }

    /// <summary>
    /// A Bind of a named statement FastPool keeps (max_prepared_statements): routed by the classification of its
    /// Parse, made once and kept with the statement. A read may run on a standby (the statement is prepared there
    /// first if that server lacks it); anything else is held back while the client holds a standby, like a Query.
    /// </summary>
    public bool InspectBind(PreparedStatements.ClientStatement? statement)
    {
        if (!_balanced || statement is null)
        {
            // A name the client never prepared: the server answers for it (26000), wherever it is.
            return true;
        }

        return RouteCheck(TraitsOf(statement), namedStatement: false);
    }

    /// <summary>A kept statement's routing classification, made again only when the routing settings changed (reload).</summary>
    private RouteTraits TraitsOf(PreparedStatements.ClientStatement statement)
    {
        if (!ReferenceEquals(statement.RouteFor, _routing))
        {
            statement.RouteTraits = ClassifyUncached(statement.Text);
            statement.RouteFor = _routing;
        }

        return statement.RouteTraits;
    }

    private bool RouteCheck(RouteTraits traits, bool namedStatement)
    {
        bool needsPrimary = namedStatement || NeedsPrimary(traits);
        if (_attachedForRead)
        {
            if (needsPrimary && !_split && !_bypassHold && !_readOnlyBlock && !_idleNotDetached && !_server!.Protocol.UnsyncedExtended)
            {
                // Wait for this standby's transaction to end; the server pump signals once it hands the standby back.
                _hold ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                return false;
            }

            _bypassHold = false;
            _splitQueried |= _split && (traits & RouteTraits.TransactionStart) == 0;
            TrackBlock(traits, ref _readOnlyBlock);
            return true;
        }

        if (_watchFirstStatement && (traits & RouteTraits.TransactionStart) == 0)
        {
            _watchFirstStatement = false;
            _writesFirst = (traits & ~RouteTraits.MultipleStatements) != 0;
        }

        bool inBlock = _primaryBlock || (traits & RouteTraits.TransactionStart) != 0;
        TrackBlock(traits, ref _primaryBlock);
        if ((traits & RouteTraits.Write) != 0)
        {
            _wroteInTransaction = true;
            if (_routing.DisableLoadBalanceOnWrite == WriteStickiness.Always
                || (_routing.DisableLoadBalanceOnWrite == WriteStickiness.TransTransaction && inBlock))
            {
                _primaryOnly = true;
            }
        }

        if ((traits & RouteTraits.TemporaryObject) != 0)
        {
            // A temporary table exists only on the server that created it: from now on the client stays on the primary.
            _primaryOnly = true;
        }

        return true;
    }

    private static void TrackBlock(RouteTraits traits, ref bool inBlock)
    {
        if ((traits & RouteTraits.TransactionEnd) != 0)
        {
            inBlock = false;
        }
        else if ((traits & RouteTraits.TransactionStart) != 0)
        {
            inBlock = true;
        }
    }

    /// <summary>Before the pipeline runs: the intent, and (read_your_writes) the WAL position the client's reads need.</summary>
    private async ValueTask PrepareRouteAsync(RouteIntent intent)
    {
        if (intent == RouteIntent.Read && _walFetch is { IsCompleted: false } fetch)
        {
            await fetch.ConfigureAwait(false);
        }

        if (intent == RouteIntent.Read && _walFetchWanted)
        {
            await FetchWalPositionOnReservedAsync().ConfigureAwait(false);
        }

        _query.Intent = intent;
    }

    /// <summary>After the pipeline produced a server: what the scanner's route checks need to know about it.</summary>
    private void Attached(ServerConnection server)
    {
        _attachedForRead = _balanced && server.Node.Role == NodeRole.Standby && _query.Intent == RouteIntent.Read;
        _split = _attachedForRead && _splitIntent;
        _splitQueried = false;
        _readOnlyBlock = false;
        _primaryBlock = false;
        _wroteInTransaction = false;
        _idleNotDetached = false;
        _sentSinceAttach = false;
        _bypassHold = false;
        _replayLength = 0;
        _replayable = _attachedForRead;
    }

    /// <summary>
    /// The server pump handed <paramref name="server"/> back at the end of a transaction. After a write on the
    /// primary (<paramref name="walFetch"/> is not 0), read_your_writes first asks it for its WAL position (the client
    /// already has its answer, so it waits only if its next transaction is a read that starts before the answer
    /// arrives), then releases it.
    /// </summary>
    private void ReleaseAfterTransaction(ServerConnection server, long walFetch)
    {
        if (_reserving)
        {
            // Parked for the client (TryDetach), not released.
            SignalHold();
            return;
        }

        if (walFetch == 0)
        {
            server.Pool.Release(server);
            SignalHold();
            return;
        }

        _walFetch = FetchWalPositionThenReleaseAsync(server, walFetch);
        SignalHold();
    }

    /// <summary>
    /// Under the swap lock, as the transaction's server is detached: 0, or the number of the WAL position fetch that
    /// read_your_writes needs. Until that fetch answers, no standby is known to have the write, so the client's reads
    /// go to the primary even if they start before the fetch does.
    /// </summary>
    private long TakeWrite(ServerConnection server)
    {
        bool fetch = _balanced && _wroteInTransaction && _routing.ReadYourWrites && !_attachedForRead;
        _wroteInTransaction = false;
        if (!fetch)
        {
            return 0;
        }

        _query.MinReplayLsn = ulong.MaxValue;
        if (_reserving)
        {
            // Session pooling: the client keeps this server, so the position is asked for before its next read.
            _walFetchWanted = true;
            _walFetchNode = server.Node.Id;
            return 0;
        }

        return Interlocked.Increment(ref _walFetchNumber);
    }

    private async Task FetchWalPositionThenReleaseAsync(ServerConnection server, long number)
    {
        var builder = _walBuilder ??= new MessageBuilder();
        try
        {
            using var cts = new CancellationTokenSource(s_resetTimeout);
            var row = await MessageIo.QueryFirstRowAsync(server, builder, WalPositionQuery, cts.Token).ConfigureAwait(false);
            // Only the latest write's position counts: an older fetch answering late must not lower the bar.
            if (Volatile.Read(ref _walFetchNumber) == number)
            {
                _query.MinReplayLsn = NodeMonitor.CommitBound(row);
            }
        }
        catch (Exception ex)
        {
            // Not knowing how far the write went, no standby is known to have it: reads stay on the primary until
            // the client's next write tells a position again.
            _query.MinReplayLsn = ulong.MaxValue;
            if (ex is not ServerException)
            {
                server.Broken = true;
            }
        }

        server.Pool.Release(server);
    }

    /// <summary>Wakes the client pump if it holds a statement back (the standby was handed back, or failed).</summary>
    private void SignalHold() => Interlocked.Exchange(ref _hold, null)?.TrySetResult();

    /// <summary>The client pump held a statement back: waits until the standby's transaction is over.</summary>
    private Task WaitForHoldAsync()
    {
        var hold = Volatile.Read(ref _hold);
        if (hold is null)
        {
            return Task.CompletedTask;
        }

        // Nothing reads the client meanwhile: should it leave, its hang-up ends the wait (OnHangup), and the pump
        // then finds it gone, instead of the session and its server waiting on a standby that may never be idle.
        _client.TryWatchHangup(this);
        return hold.Task;
    }
}

/// <summary>
/// Session pooling over several nodes without balancing: each Query and Parse text is classified only to count the
/// reads among them (select_cnt), then handed to the next inspector (the cache's), if any.
/// </summary>
internal sealed class UnbalancedReadCounter(ClientSession session, IQueryInspector? next) : IQueryInspector
{
    public bool Inspect(in ReadOnlySequence<byte> sql, bool namedStatement)
    {
        session.CountUnbalancedStatement(sql);
        return next?.Inspect(sql, namedStatement) ?? true;
    }

    public bool InspectBind(PreparedStatements.ClientStatement? statement) => next?.InspectBind(statement) ?? true;
}
