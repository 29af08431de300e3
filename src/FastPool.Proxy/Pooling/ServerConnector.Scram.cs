using System.Buffers;
using FastPool.Protocol;
using FastPool.Protocol.Scram;

namespace FastPool.Proxy.Pooling;

/// <summary>SCRAM-SHA-256 login to PostgreSQL (PostgreSQL docs 55.3 "SASL Authentication", 55.3.1).</summary>
internal static partial class ServerConnector
{
    /// <summary>What one login remembers between authentication messages.</summary>
    private sealed class LoginState
    {
        public ScramClient? Scram { get; set; }
    }

    /// <summary>
    /// Handles AuthenticationSASL, SASLContinue and SASLFinal. Returns true when <paramref name="builder"/> holds an
    /// answer to send; SASLFinal has none (the server follows it with AuthenticationOk).
    /// Only SCRAM-SHA-256 is chosen: SCRAM-SHA-256-PLUS needs channel binding, which needs TLS to the server.
    /// </summary>
    private static bool AnswerSasl(PoolKey key, AuthenticationCode code, ReadOnlySequence<byte> data, MessageBuilder builder, LoginState login)
    {
        switch (code)
        {
            case AuthenticationCode.Sasl:
                if (login.Scram is not null)
                {
                    throw ScramFailure("server restarted SASL authentication");
                }

                if (!OffersScramSha256(data))
                {
                    throw new ServerException(SqlState.InvalidAuthorizationSpecification,
                        "server offered no SASL mechanism FastPool supports (it uses SCRAM-SHA-256 without channel binding)");
                }

                login.Scram = new ScramClient(RequirePassword(key));
                builder.Reset();
                builder.SaslInitialResponse(ScramSha256.Mechanism, login.Scram.ClientFirst());
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

    private static bool OffersScramSha256(ReadOnlySequence<byte> data)
    {
        if (!BackendMessages.TryReadSaslMechanisms(data, out var mechanisms))
        {
            throw ScramFailure("malformed AuthenticationSASL mechanism list");
        }

        foreach (var mechanism in mechanisms)
        {
            if (mechanism.Length == ScramSha256.Mechanism.Length && mechanism.ToArray().AsSpan().SequenceEqual("SCRAM-SHA-256"u8))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The reasons never quote the server's messages: they carry nonces.</summary>
    private static ServerException ScramFailure(string reason) =>
        new(SqlState.ProtocolViolation, "SCRAM authentication with the server failed: " + reason);
}
