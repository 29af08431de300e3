using System.Buffers;

namespace FastPool.Proxy.Metrics;

/// <summary>
/// Reads the SQLSTATE class of an ErrorResponse as its body streams past the forwarding scanner, a few bytes
/// at a time if need be, so nothing has to be held back to classify an error. Fields are a type byte and a C
/// string each (PostgreSQL docs 55.7, ErrorResponse); PostgreSQL sends S, V and C first, so the code comes
/// within the first bytes, and the sniffer gives up after <see cref="Limit"/> of them. On the way it notes whether
/// the non-localized severity (V) is FATAL or PANIC: the server closes the connection after such an error (55.8, 55.2.9).
/// </summary>
internal struct ErrorClassSniffer
{
    public const int Limit = 128;

    private int _seen;
    private bool _active;
    private bool _atType;
    private bool _inCode;
    private byte _first;
    private bool _severityStart;
    private bool _fatal;

    /// <summary>True between the start of an ErrorResponse body and the moment its class is known (or given up).</summary>
    public readonly bool Active => _active;

    /// <summary>The error read last said FATAL or PANIC (its V field came before its code, as PostgreSQL sends them).</summary>
    public readonly bool Fatal => _fatal;

    public void Start()
    {
        _active = true;
        _seen = 0;
        _atType = true;
        _inCode = false;
        _first = 0;
        _severityStart = false;
        _fatal = false;
    }

    /// <summary>Looks at the next bytes of the body (the caller stops calling once <see cref="Active"/> is false).</summary>
    public void Feed(in ReadOnlySequence<byte> bytes, IErrorClassCounter counter)
    {
        foreach (var segment in bytes)
        {
            foreach (byte b in segment.Span)
            {
                if (!Step(b, counter))
                {
                    return;
                }
            }
        }
    }

    /// <summary>The body ended (or the session did) with the class still unread.</summary>
    public void End(IErrorClassCounter counter)
    {
        if (_active)
        {
            _active = false;
            counter.CountUnknown();
        }
    }

    private bool Step(byte b, IErrorClassCounter counter)
    {
        if (++_seen > Limit)
        {
            End(counter);
            return false;
        }

        if (_atType)
        {
            if (b == 0)
            {
                End(counter);
                return false;
            }

            _atType = false;
            _inCode = b == (byte)'C';
            // The value's first byte is next: enough to tell FATAL and PANIC from the rest.
            _severityStart = b == (byte)'V';
            _first = 0;
            return true;
        }

        if (b == 0)
        {
            if (_inCode)
            {
                // A code shorter than two characters.
                End(counter);
                return false;
            }

            _atType = true;
            return true;
        }

        if (!_inCode)
        {
            if (_severityStart)
            {
                _severityStart = false;
                _fatal = b is (byte)'F' or (byte)'P';
            }

            return true;
        }

        if (!IsClassChar(b))
        {
            End(counter);
            return false;
        }

        if (_first == 0)
        {
            _first = b;
            return true;
        }

        _active = false;
        counter.CountClass(_first, b);
        return false;
    }

    private static bool IsClassChar(byte c) => c is >= (byte)'0' and <= (byte)'9' or >= (byte)'A' and <= (byte)'Z';
}
