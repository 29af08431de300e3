using System.Buffers;
using FastPool.Protocol;
using FastPool.Protocol.Scram;
using FastPool.Proxy.Transport;

namespace FastPool.Proxy.Pooling;

/// <summary>SCRAM-SHA-256 login to PostgreSQL (PostgreSQL docs 55.3 "SASL Authentication", 55.3.1).</summary>
internal static partial class ServerConnector
{
    /// <summary>What one login remembers between authentication messages.</summary>
    private sealed class LoginState(PoolKey key, PoolManager manager)
    {
        public PoolKey Key { get; } = key;

        public PoolManager Manager { get; } = manager;

        public ScramClient? Scram { get; set; }

        /// <summary>Set when the SCRAM login uses keys recovered from a client's login instead of a password.</summary>
        public ScramKeys? Passthrough { get; set; }

        /// <summary>The SASL mechanism chosen, for the log line.</summary>
        public string? Mechanism { get; set; }
    }

    /// <summary>
    /// Handles AuthenticationSASL, SASLContinue and SASLFinal. Returns true when <paramref name="builder"/> holds an
    /// answer to send; SASLFinal has none (the server follows it with AuthenticationOk).
    /// Over TLS, SCRAM-SHA-256-PLUS is chosen when offered, bound to the server's certificate (tls-server-end-point),
    /// so a man in the middle holding another certificate cannot relay the exchange (55.3.1).
    /// </summary>
    private static bool AnswerSasl(AuthenticationCode code, ReadOnlySequence<byte> data, MessageBuilder builder, LoginState login, TlsConnection? tls)
    {
        switch (code)
        {
            case AuthenticationCode.Sasl:
                if (login.Scram is not null)
                {
                    throw ScramFailure("server restarted SASL authentication");
                }

                var (plain, plus) = OfferedScram(data);
                var certificate = tls?.RemoteCertificate;
                var binding = plus && certificate is not null ? TlsServerEndPoint.Compute(certificate) : null;
                if (binding is not null)
                {
                    login.Mechanism = ScramSha256.PlusMechanism;
                    login.Scram = NewScramClient(login, ScramMessages.Gs2HeaderServerEndPoint, binding);
                }
                else if (plain)
                {
                    // "y": we could bind but the server offered no -PLUS; "n" over TLS when it did but the certificate's
                    // hash cannot be determined (the server would take "y" as a downgrade attack and refuse it).
                    login.Mechanism = ScramSha256.Mechanism;
                    login.Scram = NewScramClient(login, tls is not null && !plus ? ScramMessages.Gs2HeaderBindingNotOffered : ScramMessages.Gs2HeaderNoBinding, []);
                }
                else
                {
                    throw new ServerException(SqlState.InvalidAuthorizationSpecification,
                        "server offered no SASL mechanism FastPool supports (SCRAM-SHA-256, or SCRAM-SHA-256-PLUS over TLS)");
                }

                builder.Reset();
                builder.SaslInitialResponse(login.Mechanism, login.Scram.ClientFirst());
                return true;
            case AuthenticationCode.SaslContinue:
                if (login.Scram is null)
                {
                    throw ScramFailure("server sent SASLContinue without starting SASL");
                }

                if (!login.Scram.TryClientFinal(data.ToArray(), out var clientFinal, out var error))
                {
                    throw ScramFailure(error);
                }

                builder.Reset();
                builder.SaslResponse(clientFinal);
                return true;
            default:
                if (login.Scram is null)
                {
                    throw ScramFailure("server sent SASLFinal without starting SASL");
                }

                if (!login.Scram.TryVerifyServerFinal(data.ToArray(), out error))
                {
                    throw ScramFailure(error);
                }

                return false;
        }
    }

    /// <summary>
    /// With the password when one is configured; otherwise SCRAM passthrough, with the keys of the user's latest
    /// verified client SCRAM login. Channel binding works either way: it is part of the AuthMessage the keys sign.
    /// </summary>
    private static ScramClient NewScramClient(LoginState login, string gs2Header, byte[] binding)
    {
        if (login.Key.Password is { } password)
        {
            return new ScramClient(password, gs2Header, binding);
        }

        login.Passthrough = login.Manager.Secrets.ScramKeysFor(login.Key.DatabaseKey, login.Key.User);
        return login.Passthrough is { } keys ? new ScramClient(keys, gs2Header, binding) : new ScramClient(RequirePassword(login.Key), gs2Header, binding);
    }

    private static (bool Plain, bool Plus) OfferedScram(ReadOnlySequence<byte> data)
    {
        if (!BackendMessages.TryReadSaslMechanisms(data, out var mechanisms))
        {
            throw ScramFailure("malformed AuthenticationSASL mechanism list");
        }

        bool plain = false, plus = false;
        foreach (var mechanism in mechanisms)
        {
            var name = mechanism.ToArray().AsSpan();
            plain |= name.SequenceEqual("SCRAM-SHA-256"u8);
            plus |= name.SequenceEqual("SCRAM-SHA-256-PLUS"u8);
        }

        return (plain, plus);
    }

    /// <summary>The reasons never quote the server's messages: they carry nonces.</summary>
    private static ServerException ScramFailure(string reason) =>
        new(SqlState.ProtocolViolation, "SCRAM authentication with the server failed: " + reason);
}
