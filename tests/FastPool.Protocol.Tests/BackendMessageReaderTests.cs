using System.Buffers;
using FastPool.Protocol.Tests.Infrastructure;
using static FastPool.Protocol.Tests.Infrastructure.Framed;
using static FastPool.Protocol.Tests.Infrastructure.TestMessages;

namespace FastPool.Protocol.Tests;

/// <summary>The allocating readers FastPool uses during login and for its own errors.</summary>
public class BackendMessageReaderTests
{
    [Fact]
    public void ParameterStatus_reads_name_and_value_at_every_split()
    {
        ForEachSplit(Build(b => b.ParameterStatus("application_name", "pgbench")), BackendCode.ParameterStatus, body =>
        {
            Assert.True(BackendMessageReader.TryReadParameterStatus(body, out var name, out var value));
            Assert.Equal("application_name", name);
            Assert.Equal("pgbench", value);
        }, threeWay: true);
    }

    [Theory]
    [InlineData(TransactionStatus.Idle)]
    [InlineData(TransactionStatus.InTransaction)]
    [InlineData(TransactionStatus.Failed)]
    public void ReadyForQuery_reads_the_status_at_every_split(TransactionStatus status)
    {
        ForEachSplit(Build(b => b.ReadyForQuery(status)), BackendCode.ReadyForQuery,
            body => Assert.Equal(status, BackendMessageReader.ReadReadyForQuery(body)), threeWay: true);
    }

    [Fact]
    public void AuthenticationMd5Password_carries_the_salt()
    {
        var message = Build(b => b.StartMessage((byte)'R').WriteInt32((int)AuthenticationCode.Md5Password).WriteBytes([9, 8, 7, 6]).EndMessage());
        ForEachSplit(message, BackendCode.Authentication, body =>
        {
            Assert.True(BackendMessageReader.TryReadAuthentication(body, out var code, out var salt));
            Assert.Equal(AuthenticationCode.Md5Password, code);
            Assert.Equal(new byte[] { 9, 8, 7, 6 }, salt.ToArray());
        });
        ForEachSplit(Build(b => b.AuthenticationOk()), BackendCode.Authentication, body =>
        {
            Assert.True(BackendMessageReader.TryReadAuthentication(body, out var code, out var data));
            Assert.Equal(AuthenticationCode.Ok, code);
            Assert.True(data.IsEmpty);
        });
    }

    [Fact]
    public void BackendKeyData_copies_pid_and_key()
    {
        ForEachSplit(Build(b => b.BackendKeyData(77, -2)), BackendCode.BackendKeyData, body =>
        {
            Assert.True(BackendMessageReader.TryReadBackendKeyData(body, out int pid, out var key));
            Assert.Equal(77, pid);
            Assert.Equal(new byte[] { 0xFF, 0xFF, 0xFF, 0xFE }, key);
        });
    }

    [Fact]
    public void ReadErrorFields_prefers_the_unlocalized_severity()
    {
        var message = Build(b => b.StartMessage((byte)'E').WriteByte((byte)'S').WriteCString("FEHLER").WriteByte((byte)'V').WriteCString("ERROR")
            .WriteByte((byte)'C').WriteCString("22012").WriteByte((byte)'M').WriteCString("division by zero").WriteByte(0).EndMessage());
        ForEachSplit(message, BackendCode.ErrorResponse, body =>
        {
            var fields = BackendMessageReader.ReadErrorFields(body);
            Assert.Equal("ERROR", fields.Severity);
            Assert.Equal("22012", fields.Code);
            Assert.Equal("division by zero", fields.Message);
            Assert.Null(fields.Detail);
        });
    }
}
