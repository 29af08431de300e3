using System.Net;
using System.Net.Sockets;
using FastPool.Proxy.Transport.Epoll;

namespace FastPool.Proxy.Transport;

/// <summary>A connection whose loop can say when its socket first becomes writable, and what connect(2) ended with.</summary>
internal interface INonBlockingConnect
{
    ValueTask WaitWritableAsync(CancellationToken ct);

    /// <summary>SO_ERROR: 0 when the connect succeeded, else the errno it failed with.</summary>
    int PendingError();
}

/// <summary>
/// The non-blocking connect(2) the epoll and io_uring transports share: start it, wrap the socket, wait for the
/// first writable edge (their loops differ only in how they report it), then read SO_ERROR. .NET's own
/// Socket.RemoteEndPoint would consume SO_ERROR and take a refused connect for a success, so it is read here.
/// </summary>
internal static class NonBlockingConnect
{
    public static async ValueTask<Connection> ConnectAsync<T>(Socket socket, EndPoint remote, Func<Socket, T> wrap, CancellationToken ct)
        where T : Connection, INonBlockingConnect
    {
        socket.Blocking = false;
        bool pending = false;
        try
        {
            socket.Connect(remote);
        }
        catch (SocketException ex) when (ex.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress or SocketError.AlreadyInProgress)
        {
            pending = true;
        }

        var connection = wrap(socket);
        try
        {
            if (pending)
            {
                await connection.WaitWritableAsync(ct).ConfigureAwait(false);
                int error = connection.PendingError();
                if (error != 0)
                {
                    throw new SocketException((int)Errno.ToSocketError(error));
                }
            }

            return connection;
        }
        catch
        {
            connection.Abort();
            throw;
        }
    }
}
