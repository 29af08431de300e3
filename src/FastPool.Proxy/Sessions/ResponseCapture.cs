using System.Buffers;
using System.Buffers.Binary;
using FastPool.Protocol;

namespace FastPool.Proxy.Sessions;

/// <summary>
/// Copies a server's response to one cacheable request as it is forwarded, and says whether it is complete and
/// cacheable: only ParseComplete, BindComplete, ParameterDescription, RowDescription, NoData, DataRow and
/// CommandComplete, then ReadyForQuery 'I' (55.7 "Message Formats"). An error, a notice, a ParameterStatus, a
/// suspended portal, anything else abandons it. Runs only for requests that may be cached, so the forwarding of
/// every other response copies nothing.
/// </summary>
internal sealed class ResponseCapture
{
    private const int KeepCapacity = 64 * 1024;

    private byte[] _buffer = new byte[1024];
    private int _length;
    private int _parsed;
    private int _max;

    public bool Active { get; private set; }

    public byte[] Key { get; private set; } = [];

    public string[] Relations { get; private set; } = [];

    public long CapturedFrom { get; private set; }

    public void Begin(byte[] key, string[] relations, long capturedFrom, int maxResponse)
    {
        Key = key;
        Relations = relations;
        CapturedFrom = capturedFrom;
        _max = maxResponse;
        _length = 0;
        _parsed = 0;
        Active = true;
    }

    public void Abandon()
    {
        Active = false;
        Key = [];
        Relations = [];
        if (_buffer.Length > KeepCapacity)
        {
            _buffer = new byte[1024];
        }
    }

    /// <summary>Takes the next forwarded bytes; the whole response (ReadyForQuery included) once it is complete and cacheable.</summary>
    public byte[]? Feed(in ReadOnlySequence<byte> forwarded)
    {
        // The ReadyForQuery that ends the response is not counted against memqcache_maxcache.
        if (_length + forwarded.Length > _max + 6L)
        {
            Abandon();
            return null;
        }

        int needed = _length + (int)forwarded.Length;
        if (_buffer.Length < needed)
        {
            Array.Resize(ref _buffer, Math.Max(needed, _buffer.Length * 2));
        }

        forwarded.CopyTo(_buffer.AsSpan(_length));
        _length = needed;
        while (_parsed + MessageHeader.Size <= _length)
        {
            byte code = _buffer[_parsed];
            int length = BinaryPrimitives.ReadInt32BigEndian(_buffer.AsSpan(_parsed + 1));
            if (length < 4 || _parsed + 1L + length > _length)
            {
                if (length < 4)
                {
                    Abandon();
                }

                return null;
            }

            switch ((BackendCode)code)
            {
                case BackendCode.ParseComplete:
                case BackendCode.BindComplete:
                case BackendCode.ParameterDescription:
                case BackendCode.RowDescription:
                case BackendCode.NoData:
                case BackendCode.DataRow:
                case BackendCode.CommandComplete:
                    _parsed += 1 + length;
                    continue;
                case BackendCode.ReadyForQuery when length == 5 && _buffer[_parsed + 5] == (byte)TransactionStatus.Idle:
                    var response = _buffer.AsSpan(0, _parsed + 6).ToArray();
                    Active = false;
                    return response;
                default:
                    Abandon();
                    return null;
            }
        }

        return null;
    }
}
