using System.Buffers.Binary;
using System.Text;

namespace FastPool.Protocol;

/// <summary>
/// Builds outgoing messages into one reusable buffer. Used off the hot path (login, errors, reset queries):
/// forwarded traffic is never rebuilt, only sliced. One instance per connection, reused after <see cref="Reset"/>.
/// </summary>
public sealed class MessageBuilder
{
    private byte[] _buffer;
    private int _length;
    private int _messageStart = -1;

    public MessageBuilder(int initialCapacity = 256)
    {
        _buffer = new byte[initialCapacity];
    }

    public ReadOnlyMemory<byte> Written => _buffer.AsMemory(0, _length);

    public int Length => _length;

    public void Reset()
    {
        _length = 0;
        _messageStart = -1;
    }

    /// <summary>Drops everything written after <paramref name="length"/> (a reply abandoned halfway for an error).</summary>
    public void Truncate(int length)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, _length);
        _length = length;
        _messageStart = -1;
    }

    /// <summary>Starts a typed message; its length is filled in by <see cref="EndMessage"/>.</summary>
    public MessageBuilder StartMessage(byte code)
    {
        WriteByte(code);
        _messageStart = _length;
        WriteInt32(0);
        return this;
    }

    /// <summary>Starts an untyped message (the startup packet family), which has only a length.</summary>
    public MessageBuilder StartUntypedMessage()
    {
        _messageStart = _length;
        WriteInt32(0);
        return this;
    }

    public MessageBuilder EndMessage()
    {
        BinaryPrimitives.WriteInt32BigEndian(_buffer.AsSpan(_messageStart), _length - _messageStart);
        _messageStart = -1;
        return this;
    }

    public MessageBuilder WriteByte(byte value)
    {
        Ensure(1);
        _buffer[_length++] = value;
        return this;
    }

    public MessageBuilder WriteInt16(short value)
    {
        Ensure(2);
        BinaryPrimitives.WriteInt16BigEndian(_buffer.AsSpan(_length), value);
        _length += 2;
        return this;
    }

    public MessageBuilder WriteInt32(int value)
    {
        Ensure(4);
        BinaryPrimitives.WriteInt32BigEndian(_buffer.AsSpan(_length), value);
        _length += 4;
        return this;
    }

    public MessageBuilder WriteBytes(ReadOnlySpan<byte> bytes)
    {
        Ensure(bytes.Length);
        bytes.CopyTo(_buffer.AsSpan(_length));
        _length += bytes.Length;
        return this;
    }

    /// <summary>A null-terminated UTF-8 string (the protocol's String type, 55.6).</summary>
    public MessageBuilder WriteCString(string value)
    {
        int max = Encoding.UTF8.GetMaxByteCount(value.Length) + 1;
        Ensure(max);
        _length += Encoding.UTF8.GetBytes(value, _buffer.AsSpan(_length));
        _buffer[_length++] = 0;
        return this;
    }

    private void Ensure(int extra)
    {
        if (_length + extra <= _buffer.Length)
        {
            return;
        }

        Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + extra));
    }
}
