using System.Buffers;
using System.IO.Pipelines;

namespace FastPool.Proxy.Transport;

/// <summary>
/// Takes what a connection received while a read of it is parked, on the transport's loop thread, instead of
/// resuming that read. A session pump's usual step (scan the messages, send them on, advance) finishes without
/// waiting; done here, it skips completing the parked read, resuming the pump's state machine and parking the next
/// read, which in session pooling was a quarter of the proxy's own CPU per transaction.
/// </summary>
internal interface IInlineConsumer
{
    /// <summary>
    /// Called with the reader's unconsumed bytes while the read stays parked. True: the consumer took them (and
    /// advanced <paramref name="reader"/>). False: the parked read completes with what is buffered, for the pump
    /// to take; the consumer either touched nothing or left the step it could not finish for the pump.
    /// </summary>
    bool TryConsume(PipeReader reader, in ReadOnlySequence<byte> buffer);
}
