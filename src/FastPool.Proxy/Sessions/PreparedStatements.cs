using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using FastPool.Protocol;
using FastPool.Proxy.Pooling;

namespace FastPool.Proxy.Sessions;

/// <summary>
/// Protocol-level named prepared statements in transaction and statement pooling (max_prepared_statements > 0).
/// The client's statements are kept here under the client's names; on the server a statement lives under a name
/// derived from its text, parameter types and search_path ("fp_" + 16 hex digits), so the same statement from many
/// clients is one server-side statement, tracked per server connection in a <see cref="PreparedStatementCache"/>.
/// On the way to the server, Parse, Bind, Describe 'S' and Close 'S' are rewritten; a statement the server lacks is
/// prepared right before the Bind or Describe that needs it, and the cache is kept within max_prepared_statements
/// by closing the least recently used one. On the way back, the replies to what FastPool added are taken out, so
/// the client sees exactly the replies it would see from a server of its own.
/// <para>
/// Replies follow requests in order (55.2.3 "Extended Query"), so every Parse, Close, Sync, Query and FunctionCall
/// sent is queued, and ParseComplete, CloseComplete and ReadyForQuery take them off in turn. After an error in an
/// extended-protocol message the server skips everything up to Sync: the queued Parses and Closes before the next
/// Sync never took effect, and the bookkeeping that assumed they would is undone.
/// </para>
/// Both pumps of the session call in under the session's swap lock. Steady state (Bind of a known statement)
/// allocates nothing: names are looked up as spans and rewritten messages are written into <see cref="ToServer"/>.
/// </summary>
internal sealed class PreparedStatements
{
    /// <summary>"fp_" and 16 hex digits.</summary>
    public const int ServerNameLength = 19;

    // Closing a statement that does not exist is not an error (55.7, Close): a client's Parse of a statement the
    // server already has, and a client's Close, become a Close of this name, which is never prepared, so the reply
    // still comes from the server in its place among the others.
    private static ReadOnlySpan<byte> NoopName => "fp_noop"u8;

    private static ReadOnlySpan<byte> ParseComplete => [(byte)'1', 0, 0, 0, 4];

    private readonly IStatementOwner _owner;
    private readonly int _max;
    private readonly Dictionary<byte[], ClientStatement> _statements = new(NameComparer.Instance);
    private readonly Dictionary<byte[], ClientStatement>.AlternateLookup<ReadOnlySpan<byte>> _byName;
    // Arrays are allocated on first use, so a client that never uses the extended protocol costs little.
    private Pending[] _queue = [];
    private int _head;
    private int _count;
    private bool _skipping;
    private byte[] _scratch = [];
    private KnownStatements? _known;

    // The pool _known was looked up for: a session attaches servers of the same pool transaction after transaction, and
    // the lookup (a ConditionalWeakTable) was a measurable part of each attach.
    private ServerPool? _knownPool;
    private bool _forgetting;
    private int _forgetErrors;
    private byte[] _localReply = [];
    private int _localReplyLength;

    public PreparedStatements(IStatementOwner owner, int maxPerServer)
    {
        _owner = owner;
        _max = maxPerServer;
        _byName = _statements.GetAlternateLookup<ReadOnlySpan<byte>>();
    }

    /// <summary>What goes to the server for the current client scan, when a message in it was rewritten.</summary>
    public OutputBatch ToServer { get; } = new();

    /// <summary>What goes to the client for the current server scan, when a reply in it was taken out or replaced.</summary>
    public OutputBatch ToClient { get; } = new();

    /// <summary>The client's statements (for tests and the admin console).</summary>
    public int Count => _statements.Count;

    /// <summary>The client's statement named <paramref name="name"/>, or null.</summary>
    public ClientStatement? Find(ReadOnlySpan<byte> name) => _byName.TryGetValue(name, out var statement) ? statement : null;

    /// <summary>
    /// The statement a Bind (55.7: portal name, statement name, ...) at <paramref name="reader"/> executes: false when
    /// the names are not all in the buffer yet; <paramref name="statement"/> null for the unnamed statement or a name
    /// the client has not prepared (<paramref name="named"/> tells which).
    /// </summary>
    public bool TryFindBound(in SequenceReader<byte> reader, in MessageHeader header, out ClientStatement? statement, out bool named)
    {
        statement = null;
        named = false;
        long available = Math.Min(reader.Remaining - MessageHeader.Size, header.BodyLength);
        if (available < 0)
        {
            return false;
        }

        var names = new SequenceReader<byte>(reader.UnreadSequence.Slice(MessageHeader.Size, available));
        if (!names.TryAdvanceTo(0))
        {
            return available == header.BodyLength;
        }

        long portalEnd = names.Consumed;
        if (!names.TryAdvanceTo(0))
        {
            return available == header.BodyLength;
        }

        long nameLength = names.Consumed - portalEnd - 1;
        if (nameLength == 0)
        {
            return true;
        }

        named = true;
        var prefix = Contiguous(reader.UnreadSequence.Slice(MessageHeader.Size, names.Consumed));
        statement = Find(prefix.Slice((int)portalEnd, (int)nameLength));
        return true;
    }

    /// <summary>The statements known to be valid in the client's pool, before any server is attached.</summary>
    public void UseKnown(KnownStatements known)
    {
        _known = known;
        _knownPool = null;
    }

    /// <summary>The reply <see cref="TryAnswerWithoutServer"/> prepared.</summary>
    public ReadOnlyMemory<byte> LocalReply => _localReply.AsMemory(0, _localReplyLength);

    /// <summary>A new server was attached: nothing is outstanding on it.</summary>
    public void OnAttach(ServerConnection server)
    {
        if (!ReferenceEquals(_knownPool, server.Pool) || _known is null)
        {
            _known = KnownStatements.For(server.Pool);
            _knownPool = server.Pool;
        }
        _head = 0;
        _count = 0;
        _skipping = false;
        _forgetting = false;
        ToServer.Reset();
        ToClient.Reset();
    }

    /// <summary>DISCARD ALL or DEALLOCATE ALL from the client: its statements and the server's are gone.</summary>
    public void ForgetAll(ServerProtocolState server)
    {
        _statements.Clear();
        server.Prepared.Clear();

        // Whether the statement ran is known at the ReadyForQuery of the next Query or Sync (this Query's own).
        _forgetting = true;
        _forgetErrors = server.Errors;
    }

    /// <summary>
    /// A client message at <paramref name="reader"/> (not advanced). Returns -1 when more bytes are needed to decide,
    /// 0 when the message goes on unchanged, or how many of its first bytes were replaced by what was written into
    /// <see cref="ToServer"/> (the rest of the message, if any, follows unchanged).
    /// </summary>
    public long OnClientMessage(ref SequenceReader<byte> reader, in MessageHeader header, ServerProtocolState server)
    {
        switch ((FrontendCode)header.Code)
        {
            case FrontendCode.Sync:
                EnqueueReady(Kind.Sync);
                return 0;
            case FrontendCode.Query:
            case FrontendCode.FunctionCall:
                EnqueueReady(Kind.Query);
                return 0;
            case FrontendCode.Parse:
                return OnParse(ref reader, header, server);
            case FrontendCode.Bind:
                return OnBind(ref reader, header, server);
            case FrontendCode.Describe:
                return OnDescribeOrClose(ref reader, header, server, close: false);
            case FrontendCode.Close:
                return OnDescribeOrClose(ref reader, header, server, close: true);
            default:
                return 0;
        }
    }

    /// <summary>
    /// For a client that holds no server: when <paramref name="buffer"/> starts with named Parses of statements a
    /// server of the pool has accepted before, that change no session state, and a Sync, the statements are taken
    /// as the client's and <see cref="LocalReply"/> holds ParseComplete for each and ReadyForQuery 'I' (the client
    /// is between transactions). <paramref name="consumed"/> is how much of the buffer that answers.
    /// </summary>
    public LocalAnswer TryAnswerWithoutServer(in ReadOnlySequence<byte> buffer, out long consumed)
    {
        consumed = 0;
        var known = _known;
        if (known is null)
        {
            return LocalAnswer.No;
        }

        var reader = new SequenceReader<byte>(buffer);
        int parses = 0;
        while (true)
        {
            if (!MessageHeader.TryPeek(ref reader, out var header))
            {
                return parses > 0 ? LocalAnswer.NeedMore : LocalAnswer.No;
            }

            if (header.Code == (byte)FrontendCode.Sync && header.Length == 4 && parses > 0)
            {
                reader.Advance(MessageHeader.Size);
                break;
            }

            if (header.Code != (byte)FrontendCode.Parse || header.Length < 4 || header.TotalLength > ForwardingScanner.InspectLimit)
            {
                return LocalAnswer.No;
            }

            if (reader.Remaining < header.TotalLength)
            {
                return LocalAnswer.NeedMore;
            }

            var body = Contiguous(reader.UnreadSequence.Slice(MessageHeader.Size, header.BodyLength));
            int nul = body.IndexOf((byte)0);
            int textEnd = nul < 0 ? -1 : body.Slice(nul + 1).IndexOf((byte)0);
            if (nul <= 0 || textEnd < 0 || !known.Contains(KeyOf(body.Slice(nul + 1))))
            {
                return LocalAnswer.No;
            }

            // A statement whose text carries session state goes to a server, where the session sees it.
            if (SqlClassifier.Classify(body.Slice(nul + 1, textEnd), out var pins) != QueryTraits.None || pins != Configuration.PinReasons.None)
            {
                return LocalAnswer.No;
            }

            reader.Advance(header.TotalLength);
            parses++;
        }

        // All of them qualify: take them in (the bytes are read again, now that the answer is certain).
        consumed = reader.Consumed;
        var again = new SequenceReader<byte>(buffer.Slice(0, consumed));
        for (int i = 0; i < parses; i++)
        {
            MessageHeader.TryPeek(ref again, out var header);
            var body = Contiguous(again.UnreadSequence.Slice(MessageHeader.Size, header.BodyLength));
            var statement = NewStatement(body, body.IndexOf((byte)0));
            _statements[statement.Name] = statement;
            again.Advance(header.TotalLength);
        }

        int length = (parses * ParseComplete.Length) + 6;
        if (_localReply.Length < length)
        {
            _localReply = new byte[length];
        }

        for (int i = 0; i < parses; i++)
        {
            ParseComplete.CopyTo(_localReply.AsSpan(i * ParseComplete.Length));
        }

        // ReadyForQuery (55.7): Byte1('Z') Int32(5) Byte1(status).
        _localReply.AsSpan(length - 6).Clear();
        _localReply[length - 6] = (byte)BackendCode.ReadyForQuery;
        _localReply[length - 2] = 5;
        _localReply[length - 1] = (byte)TransactionStatus.Idle;
        _localReplyLength = length;
        return LocalAnswer.Answered;
    }

    /// <summary>A ParseComplete or CloseComplete (5 bytes at <paramref name="start"/>): taken out, replaced or passed on.</summary>
    public void OnCompletion(byte code, long start, ServerProtocolState server)
    {
        if (_count == 0 || _queue[_head].Kind is Kind.Sync or Kind.Query)
        {
            return;
        }

        var done = Dequeue();
        if (done.Kind is Kind.ClientParse or Kind.InsertedParse && code == (byte)BackendCode.ParseComplete)
        {
            _known?.Add(done.Key);
        }

        switch (done.Kind)
        {
            case Kind.InsertedParse:
            case Kind.EvictClose:
            case Kind.GuardClose:
                ToClient.BeginReplace(start);
                ToClient.EndReplace(start + MessageHeader.Size);
                break;
            case Kind.ParseAsClose when code == (byte)BackendCode.CloseComplete:
                ToClient.BeginReplace(start);
                ToClient.Write(ParseComplete);
                ToClient.EndReplace(start + MessageHeader.Size);
                break;
        }
    }

    /// <summary>An ErrorResponse. In an extended-protocol message it makes the server skip everything up to Sync.</summary>
    public void OnError(ServerProtocolState server)
    {
        // An error in a simple Query, a FunctionCall or at Sync (a failed commit) ends with that request's own
        // ReadyForQuery; nothing is skipped.
        if (_count == 0 || _queue[_head].Kind is Kind.Sync or Kind.Query)
        {
            return;
        }


        _skipping = true;
        DrainSkipped(server);
    }

    /// <summary>A ReadyForQuery: the Sync, Query or FunctionCall at the head is answered.</summary>
    public void OnReadyForQuery(ServerProtocolState server)
    {
        if (_skipping)
        {
            DrainSkipped(server);
            _skipping = false;
        }

        while (_count > 0)
        {
            var done = Dequeue();
            if (done.Kind is Kind.Sync or Kind.Query)
            {
                // After a DISCARD ALL or DEALLOCATE ALL with an error anywhere up to here, it may not have run
                // (DISCARD ALL fails inside a transaction block): which statements the server still has is
                // unknown, so it is not handed to another client.
                if (done.ChecksForget && server.Errors != (int)done.Key)
                {
                    server.PreparedUnknown = true;
                }

                return;
            }

            // Cannot happen with a server that follows the protocol; keep the bookkeeping on the safe side.
            Undo(done, server);
        }
    }

    /// <summary>Skipped requests up to the Sync that ends the skipping (55.2.3: a Query is skipped too).</summary>
    private void DrainSkipped(ServerProtocolState server)
    {
        while (_count > 0 && _queue[_head].Kind != Kind.Sync)
        {
            Undo(Dequeue(), server);
        }
    }

    /// <summary>A queued Parse or Close failed or was skipped: what was assumed when it was sent is taken back.</summary>
    private void Undo(in Pending pending, ServerProtocolState server)
    {
        switch (pending.Kind)
        {
            case Kind.ClientParse:
                server.Prepared.Remove(pending.Key);
                Forget(pending.Statement!);
                break;
            case Kind.InsertedParse:
                server.Prepared.Remove(pending.Key);
                break;
            case Kind.EvictClose:
                server.Prepared.Add(pending.Key);
                break;
            case Kind.ParseAsClose:
                Forget(pending.Statement!);
                break;
        }
    }

    private void Forget(ClientStatement statement)
    {
        if (_statements.TryGetValue(statement.Name, out var current) && current == statement)
        {
            _statements.Remove(statement.Name);
        }
    }

    private long OnParse(ref SequenceReader<byte> reader, in MessageHeader header, ServerProtocolState server)
    {
        if (reader.Remaining < MessageHeader.Size + 1)
        {
            return -1;
        }

        if (header.TotalLength > ForwardingScanner.InspectLimit)
        {
            // Too large to keep: the statement goes to the server under the client's own name, and the client
            // stays on that server as before this feature (pin_prepare decides).
            reader.TryPeek(MessageHeader.Size, out byte first);
            if (first != 0)
            {
                _owner.PinForStatement();
            }

            Enqueue(new Pending(Kind.Parse));
            return 0;
        }

        if (reader.Remaining < header.TotalLength)
        {
            return -1;
        }

        long start = reader.Consumed;
        var body = Contiguous(reader.UnreadSequence.Slice(MessageHeader.Size, header.BodyLength));
        int nul = body.IndexOf((byte)0);
        if (nul <= 0)
        {
            // The unnamed statement (or a malformed body the server will refuse) goes on unchanged.
            Enqueue(new Pending(Kind.Parse));
            return 0;
        }

        // Statement text, its terminator, and the parameter types: what makes two statements the same one.
        var statement = NewStatement(body, nul);
        _statements[statement.Name] = statement;

        var cache = server.Prepared;
        var output = ToServer;
        output.BeginReplace(start);
        if (cache.Touch(statement.Key))
        {
            Evict(cache, _max);
            WriteClose(output, NoopName);
            Enqueue(new Pending(Kind.ParseAsClose, statement.Key, statement));
        }
        else
        {
            Evict(cache, _max - 1);
            CloseIfEvictionPending(output, statement.Key);
            WriteParse(output, statement.Key, statement.Body);
            cache.Add(statement.Key);
            Enqueue(new Pending(Kind.ClientParse, statement.Key, statement));
        }

        output.EndReplace(start + header.TotalLength);
        return header.TotalLength;
    }

    private long OnBind(ref SequenceReader<byte> reader, in MessageHeader header, ServerProtocolState server)
    {
        // Bind: portal name, statement name, then parameters that may be far larger than one read (55.7).
        long available = Math.Min(reader.Remaining - MessageHeader.Size, header.BodyLength);
        if (available < 0)
        {
            return -1;
        }

        var names = new SequenceReader<byte>(reader.UnreadSequence.Slice(MessageHeader.Size, available));
        if (!names.TryAdvanceTo(0))
        {
            return available < header.BodyLength ? -1 : 0;
        }

        long portalEnd = names.Consumed;
        if (!names.TryAdvanceTo(0))
        {
            return available < header.BodyLength ? -1 : 0;
        }

        long nameLength = names.Consumed - portalEnd - 1;
        if (nameLength == 0)
        {
            return 0;
        }

        var prefix = Contiguous(reader.UnreadSequence.Slice(MessageHeader.Size, names.Consumed));
        if (!_byName.TryGetValue(prefix.Slice((int)portalEnd, (int)nameLength), out var statement))
        {
            // Not a statement of this client's: the server answers for it (26000) as it would without FastPool.
            return 0;
        }

        long start = reader.Consumed;
        var output = ToServer;
        output.BeginReplace(start);
        EnsurePrepared(output, statement, server.Prepared);
        if (statement.HasEffects)
        {
            // The statement runs now, on this server: its SET, LISTEN, ... are followed as if its text were sent.
            // After EnsurePrepared, so a DISCARD ALL it carries forgets the Parse sent just before it too.
            _owner.InspectStatement(new ReadOnlySequence<byte>(statement.Body, 0, statement.TextLength));
        }

        var span = output.GetSpan(MessageHeader.Size + (int)portalEnd + ServerNameLength + 1);
        span[0] = (byte)FrontendCode.Bind;
        BinaryPrimitives.WriteInt32BigEndian(span.Slice(1), header.Length - (int)nameLength + ServerNameLength);
        prefix.Slice(0, (int)portalEnd).CopyTo(span.Slice(MessageHeader.Size));
        int at = MessageHeader.Size + (int)portalEnd;
        WriteServerName(span.Slice(at), statement.Key);
        span[at + ServerNameLength] = 0;
        output.Advance(at + ServerNameLength + 1);

        long replaced = MessageHeader.Size + names.Consumed;
        output.EndReplace(start + replaced);
        return replaced;
    }

    private long OnDescribeOrClose(ref SequenceReader<byte> reader, in MessageHeader header, ServerProtocolState server, bool close)
    {
        // Describe and Close: 'S' or 'P', then the name (55.7). Portals are per transaction and pass unchanged.
        if (header.TotalLength <= ForwardingScanner.InspectLimit && reader.Remaining < header.TotalLength)
        {
            return -1;
        }

        if (close)
        {
            Enqueue(new Pending(Kind.Close));
        }

        if (header.TotalLength > ForwardingScanner.InspectLimit)
        {
            return 0;
        }

        var body = Contiguous(reader.UnreadSequence.Slice(MessageHeader.Size, header.BodyLength));
        if (body.Length < 2 || body[0] != (byte)'S' || body[1] == 0)
        {
            return 0;
        }

        int nul = body.Slice(1).IndexOf((byte)0);
        if (nul < 0 || !_byName.TryGetValue(body.Slice(1, nul), out var statement))
        {
            return 0;
        }

        long start = reader.Consumed;
        var output = ToServer;
        output.BeginReplace(start);
        if (close)
        {
            // The client's statement is gone; the shared one stays on the server for the other clients.
            _statements.Remove(statement.Name);
            WriteClose(output, NoopName);
        }
        else
        {
            EnsurePrepared(output, statement, server.Prepared);
            var span = output.GetSpan(MessageHeader.Size + 1 + ServerNameLength + 1);
            span[0] = (byte)FrontendCode.Describe;
            BinaryPrimitives.WriteInt32BigEndian(span.Slice(1), 4 + 1 + ServerNameLength + 1);
            span[MessageHeader.Size] = (byte)'S';
            WriteServerName(span.Slice(MessageHeader.Size + 1), statement.Key);
            span[MessageHeader.Size + 1 + ServerNameLength] = 0;
            output.Advance(span.Length);
        }

        output.EndReplace(start + header.TotalLength);
        return header.TotalLength;
    }

    /// <summary>A client statement from a Parse body (name, NUL, text, NUL, parameter types).</summary>
    private ClientStatement NewStatement(ReadOnlySpan<byte> body, int nameEnd)
    {
        var rest = body.Slice(nameEnd + 1);
        int textLength = Math.Max(rest.IndexOf((byte)0), 0);
        bool effects = _owner.InspectsEveryStatement
            || SqlClassifier.Classify(rest.Slice(0, textLength), out var pins) != QueryTraits.None || pins != Configuration.PinReasons.None;
        return new ClientStatement(body.Slice(0, nameEnd).ToArray(), KeyOf(rest), rest.ToArray(), textLength, effects);
    }

    /// <summary>Prepares the statement on this server first if it does not have it (its ParseComplete is taken out).</summary>
    private void EnsurePrepared(OutputBatch output, ClientStatement statement, PreparedStatementCache cache)
    {
        if (cache.Touch(statement.Key))
        {
            // max_prepared_statements may have been lowered (SET, RELOAD): the server sheds the rest as it is used.
            Evict(cache, _max);
            return;
        }

        Evict(cache, _max - 1);
        CloseIfEvictionPending(output, statement.Key);
        WriteParse(output, statement.Key, statement.Body);
        cache.Add(statement.Key);
        Enqueue(new Pending(Kind.InsertedParse, statement.Key));
    }

    /// <summary>
    /// Before a Parse of <paramref name="key"/>: when the Close that evicted it has not been answered yet, an error
    /// earlier in its batch may still make the server skip it (55.2.3), and the statement would then exist when this
    /// Parse arrives (42P05 for this and every later use on that connection). A Close of the same name goes first;
    /// closing a statement that does not exist is not an error (55.2.3), and its CloseComplete is taken out.
    /// </summary>
    private void CloseIfEvictionPending(OutputBatch output, ulong key)
    {
        for (int i = 0; i < _count; i++)
        {
            var pending = _queue[(_head + i) % _queue.Length];
            if (pending.Kind == Kind.EvictClose && pending.Key == key)
            {
                Span<byte> name = stackalloc byte[ServerNameLength];
                WriteServerName(name, key);
                WriteClose(output, name);
                Enqueue(new Pending(Kind.GuardClose, key));
                return;
            }
        }
    }

    /// <summary>Closes least recently used statements until at most <paramref name="keep"/> are left.</summary>
    private void Evict(PreparedStatementCache cache, int keep)
    {
        Span<byte> name = stackalloc byte[ServerNameLength];
        while (cache.Count > keep)
        {
            ulong oldest = cache.Oldest;
            cache.Remove(oldest);
            WriteServerName(name, oldest);
            WriteClose(ToServer, name);
            Enqueue(new Pending(Kind.EvictClose, oldest));
        }
    }

    /// <summary>Parse (55.7): name, then the client's text, terminator and parameter types as they came.</summary>
    private static void WriteParse(OutputBatch output, ulong key, ReadOnlySpan<byte> body)
    {
        int length = 4 + ServerNameLength + 1 + body.Length;
        var span = output.GetSpan(length + 1);
        span[0] = (byte)FrontendCode.Parse;
        BinaryPrimitives.WriteInt32BigEndian(span.Slice(1), length);
        WriteServerName(span.Slice(MessageHeader.Size), key);
        span[MessageHeader.Size + ServerNameLength] = 0;
        body.CopyTo(span.Slice(MessageHeader.Size + ServerNameLength + 1));
        output.Advance(span.Length);
    }

    /// <summary>Close (55.7) of a prepared statement.</summary>
    private static void WriteClose(OutputBatch output, ReadOnlySpan<byte> name)
    {
        int length = 4 + 1 + name.Length + 1;
        var span = output.GetSpan(length + 1);
        span[0] = (byte)FrontendCode.Close;
        BinaryPrimitives.WriteInt32BigEndian(span.Slice(1), length);
        span[MessageHeader.Size] = (byte)'S';
        name.CopyTo(span.Slice(MessageHeader.Size + 1));
        span[^1] = 0;
        output.Advance(span.Length);
    }

    /// <summary>The server-side name of a statement key: "fp_" and the key in 16 lower-case hex digits.</summary>
    public static void WriteServerName(Span<byte> destination, ulong key)
    {
        "fp_"u8.CopyTo(destination);
        key.TryFormat(destination.Slice(3, 16), out _, "x16");
    }

    /// <summary>
    /// 64 bits of SHA-256 over the statement text and parameter types, and the search_path the client has: the same
    /// text names other tables under another search_path, so it must not be the same server-side statement.
    /// </summary>
    private ulong KeyOf(ReadOnlySpan<byte> textAndTypes)
    {
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(textAndTypes, digest);
        var searchPath = _owner.SearchPath;
        if (!string.IsNullOrEmpty(searchPath))
        {
            int length = digest.Length + Encoding.UTF8.GetByteCount(searchPath);
            var both = length <= 512 ? stackalloc byte[length] : new byte[length];
            digest.CopyTo(both);
            Encoding.UTF8.GetBytes(searchPath, both.Slice(digest.Length));
            SHA256.HashData(both, digest);
        }

        return BinaryPrimitives.ReadUInt64BigEndian(digest);
    }

    private ReadOnlySpan<byte> Contiguous(in ReadOnlySequence<byte> bytes)
    {
        if (bytes.IsSingleSegment)
        {
            return bytes.FirstSpan;
        }

        if (_scratch.Length < bytes.Length)
        {
            _scratch = new byte[Math.Max(Math.Max(_scratch.Length * 2, 256), (int)bytes.Length)];
        }

        bytes.CopyTo(_scratch);
        return _scratch.AsSpan(0, (int)bytes.Length);
    }

    /// <summary>A Sync, Query or FunctionCall; the first after a DISCARD ALL / DEALLOCATE ALL carries the check of it.</summary>
    private void EnqueueReady(Kind kind)
    {
        if (_forgetting)
        {
            _forgetting = false;
            Enqueue(new Pending(kind, (ulong)_forgetErrors) { ChecksForget = true });
            return;
        }

        Enqueue(new Pending(kind));
    }

    private void Enqueue(in Pending pending)
    {
        if (_count == _queue.Length)
        {
            var grown = new Pending[Math.Max(_queue.Length * 2, 8)];
            for (int i = 0; i < _count; i++)
            {
                grown[i] = _queue[(_head + i) % _queue.Length];
            }

            _queue = grown;
            _head = 0;
        }

        _queue[(_head + _count) % _queue.Length] = pending;
        _count++;
    }

    private Pending Dequeue()
    {
        var pending = _queue[_head];
        _queue[_head] = default;
        _head = (_head + 1) % _queue.Length;
        _count--;
        return pending;
    }

    private enum Kind : byte
    {
        /// <summary>Sync: answered by ReadyForQuery; ends skipping after an error.</summary>
        Sync,

        /// <summary>Query or FunctionCall: answered by ReadyForQuery.</summary>
        Query,

        /// <summary>A Parse passed on unchanged (the unnamed statement, or too large to keep).</summary>
        Parse,

        /// <summary>A Close passed on (a portal, an unknown name, or a client's Close turned into a no-op).</summary>
        Close,

        /// <summary>The client's Parse, sent under the server-side name.</summary>
        ClientParse,

        /// <summary>A Parse FastPool added before a Bind or Describe: its ParseComplete is taken out.</summary>
        InsertedParse,

        /// <summary>A Close FastPool added to keep within max_prepared_statements: its CloseComplete is taken out.</summary>
        EvictClose,

        /// <summary>The client's Parse of a statement the server had: a no-op Close whose CloseComplete becomes ParseComplete.</summary>
        ParseAsClose,

        /// <summary>A Close FastPool added before re-preparing a statement whose eviction is unanswered: its CloseComplete is taken out.</summary>
        GuardClose,
    }

    private readonly struct Pending(Kind kind, ulong key = 0, ClientStatement? statement = null)
    {
        public Kind Kind { get; } = kind;

        /// <summary>The statement key; for a ReadyForQuery that <see cref="ChecksForget"/>, the error count before it.</summary>
        public ulong Key { get; } = key;

        /// <summary>A ReadyForQuery that ends the request in which the client dropped all prepared statements.</summary>
        public bool ChecksForget { get; init; }

        public ClientStatement? Statement { get; } = statement;
    }

    /// <summary>One of the client's statements: its own name, its key, and the Parse body after the name.</summary>
    internal sealed class ClientStatement(byte[] name, ulong key, byte[] body, int textLength, bool hasEffects)
    {
        /// <summary>Replication routing: the statement's classification, made once per routing settings (<see cref="RouteFor"/>).</summary>
        public FastPool.Routing.Classification.QueryTraits RouteTraits { get; set; }

        /// <summary>The routing settings <see cref="RouteTraits"/> were made under; null until the statement is first routed.</summary>
        public object? RouteFor { get; set; }

        public ReadOnlySpan<byte> Text => Body.AsSpan(0, TextLength);

        public byte[] Name { get; } = name;

        public ulong Key { get; } = key;

        public byte[] Body { get; } = body;

        /// <summary>Bytes of statement text at the start of <see cref="Body"/>.</summary>
        public int TextLength { get; } = textLength;

        /// <summary>The text changes session state (SET, DISCARD, LISTEN, ...): looked at each time it is executed.</summary>
        public bool HasEffects { get; } = hasEffects;
    }

    /// <summary>Statement names as bytes, looked up from spans of the read buffer without making a key.</summary>
    private sealed class NameComparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<byte>, byte[]>
    {
        public static readonly NameComparer Instance = new();

        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] obj) => GetHashCode((ReadOnlySpan<byte>)obj);

        public bool Equals(ReadOnlySpan<byte> alternate, byte[] other) => alternate.SequenceEqual(other);

        public int GetHashCode(ReadOnlySpan<byte> alternate)
        {
            var hash = default(HashCode);
            hash.AddBytes(alternate);
            return hash.ToHashCode();
        }

        public byte[] Create(ReadOnlySpan<byte> alternate) => alternate.ToArray();
    }
}

/// <summary>What <see cref="PreparedStatements.TryAnswerWithoutServer"/> found.</summary>
internal enum LocalAnswer
{
    /// <summary>The client needs a server for this.</summary>
    No,

    /// <summary>So far only Parses FastPool can answer: wait for the rest of the batch.</summary>
    NeedMore,

    /// <summary>Answered: send <see cref="PreparedStatements.LocalReply"/>.</summary>
    Answered,

    /// <summary>(Session side) the client left while being answered.</summary>
    ClientGone,
}

/// <summary>What <see cref="PreparedStatements"/> needs from its session.</summary>
internal interface IStatementOwner
{
    /// <summary>The client's search_path as FastPool replays it (null when it has the server's default).</summary>
    string? SearchPath { get; }

    /// <summary>A named statement FastPool cannot keep went to the server as is: the client keeps that server.</summary>
    void PinForStatement();

    /// <summary>A kept statement whose text changes session state is executed (Bind): follow it as a query text.</summary>
    void InspectStatement(in ReadOnlySequence<byte> text);

    /// <summary>Every kept statement is followed at each Bind, not only those that change session state (the result
    /// cache must see each run of a prepared write, whose Bind carries no text).</summary>
    bool InspectsEveryStatement { get; }
}
