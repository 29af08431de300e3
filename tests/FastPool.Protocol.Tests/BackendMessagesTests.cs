using System.Buffers;
using System.Buffers.Binary;
using FastPool.Protocol.Tests.Infrastructure;
using static FastPool.Protocol.Tests.Infrastructure.Framed;
using static FastPool.Protocol.Tests.Infrastructure.TestMessages;

namespace FastPool.Protocol.Tests;

public class BackendMessagesTests
{
    private static readonly Field[] PgbenchFields =
    [
        new("aid", 16396, 1, 23, 4, -1, FormatCode.Text),
        new("abalance", 16396, 3, 23, 4, -1, FormatCode.Binary),
        new("filler", 0, 0, 1042, -1, 88, FormatCode.Text),
    ];

    [Fact]
    public void RowDescription_enumerates_every_field_at_every_split()
    {
        var message = Build(b => b.RowDescription(PgbenchFields));
        ForEachSplit(message, BackendCode.RowDescription, body =>
        {
            Assert.True(BackendMessages.TryReadRowDescription(body, out var rows));
            Assert.Equal(3, rows.FieldCount);
            int i = 0;
            foreach (var field in rows)
            {
                var expected = PgbenchFields[i++];
                Assert.Equal(expected.Name, Text(field.Name));
                Assert.Equal(expected.TableOid, field.TableOid);
                Assert.Equal(expected.Attribute, field.ColumnAttributeNumber);
                Assert.Equal(expected.TypeOid, field.TypeOid);
                Assert.Equal(expected.TypeSize, field.TypeSize);
                Assert.Equal(expected.TypeModifier, field.TypeModifier);
                Assert.Equal(expected.Format, field.Format);
            }

            Assert.Equal(3, i);
        }, threeWay: true);
    }

    [Fact]
    public void RowDescription_without_fields()
    {
        ForEachSplit(Build(b => b.RowDescription()), BackendCode.RowDescription, body =>
        {
            Assert.True(BackendMessages.TryReadRowDescription(body, out var rows));
            Assert.Equal(0, rows.FieldCount);
            foreach (var field in rows)
            {
                Assert.Fail("no fields expected");
            }
        });
    }

    [Fact]
    public void RowDescription_truncated_or_with_trailing_bytes_is_rejected()
    {
        var body = BodyOf(Build(b => b.RowDescription(PgbenchFields)));
        for (long length = 0; length < body.Length; length++)
        {
            Assert.False(BackendMessages.TryReadRowDescription(body.Slice(0, length), out _));
        }

        var longer = BodyOf(Raw((byte)BackendCode.RowDescription, [.. body.ToArray(), 0]));
        Assert.False(BackendMessages.TryReadRowDescription(longer, out _));
    }

    [Fact]
    public void DataRow_enumerates_values_and_nulls_at_every_split()
    {
        var message = Build(b => b.DataRow(Utf8("1"), null, [], Utf8("     filler")));
        ForEachSplit(message, BackendCode.DataRow, body =>
        {
            Assert.True(BackendMessages.TryReadDataRow(body, out var columns));
            Assert.Equal(4, columns.Count);
            var seen = new List<string?>();
            foreach (var value in columns)
            {
                seen.Add(value.IsNull ? null : Text(value.Data));
            }

            Assert.Equal(["1", null, "", "     filler"], seen);
        }, threeWay: true);
    }

    [Fact]
    public void DataRow_without_columns_and_truncated_rows()
    {
        Assert.True(BackendMessages.TryReadDataRow(BodyOf(Build(b => b.DataRow())), out var none));
        Assert.Equal(0, none.Count);

        var body = BodyOf(Build(b => b.DataRow(Utf8("12345"), null)));
        for (long length = 0; length < body.Length; length++)
        {
            Assert.False(BackendMessages.TryReadDataRow(body.Slice(0, length), out _));
        }
    }

    [Theory]
    [InlineData("SELECT 1")]
    [InlineData("INSERT 0 1")]
    [InlineData("")]
    public void CommandComplete_reads_the_tag_at_every_split(string tag)
    {
        ForEachSplit(Build(b => b.CommandComplete(tag)), BackendCode.CommandComplete, body =>
        {
            Assert.True(BackendMessages.TryReadCommandComplete(body, out var t));
            Assert.Equal(tag, Text(t));
        });
    }

    [Theory]
    [InlineData(BackendCode.CopyInResponse, 0, new short[] { 0, 0, 0 })]
    [InlineData(BackendCode.CopyOutResponse, 1, new short[] { 1, 1 })]
    [InlineData(BackendCode.CopyBothResponse, 0, new short[0])]
    public void CopyResponses_read_formats_at_every_split(BackendCode code, byte overall, short[] columns)
    {
        ForEachSplit(Build(b => b.CopyResponse(code, overall, columns)), code, body =>
        {
            Assert.True(BackendMessages.TryReadCopyResponse(body, out var copy));
            Assert.Equal((FormatCode)overall, copy.OverallFormat);
            Assert.Equal(columns.Length, copy.ColumnFormats.Count);
            for (int i = 0; i < columns.Length; i++)
            {
                Assert.Equal((FormatCode)columns[i], copy.ColumnFormats[i]);
            }
        }, threeWay: true);
    }

    [Fact]
    public void CopyResponse_with_an_unknown_overall_format_is_rejected()
    {
        Assert.False(BackendMessages.TryReadCopyResponse(BodyOf(Build(b => b.CopyResponse(BackendCode.CopyInResponse, 2))), out _));
        var body = BodyOf(Build(b => b.CopyResponse(BackendCode.CopyOutResponse, 0, 0, 0)));
        Assert.False(BackendMessages.TryReadCopyResponse(body.Slice(0, body.Length - 1), out _));
    }

    [Fact]
    public void CopyData_from_the_server_is_the_whole_body()
    {
        var row = Utf8("1\tone\n");
        ForEachSplit(Build(b => b.CopyData((byte)BackendCode.CopyData, row)), BackendCode.CopyData,
            body => Assert.Equal(row, BackendMessages.ReadCopyData(body).ToArray()));
    }

    [Theory]
    [InlineData("jobs", "{\"id\":7}")]
    [InlineData("c", "")]
    public void NotificationResponse_reads_pid_channel_and_payload_at_every_split(string channel, string payload)
    {
        ForEachSplit(Build(b => b.NotificationResponse(31337, channel, payload)), BackendCode.NotificationResponse, body =>
        {
            Assert.True(BackendMessages.TryReadNotificationResponse(body, out int pid, out var c, out var p));
            Assert.Equal(31337, pid);
            Assert.Equal(channel, Text(c));
            Assert.Equal(payload, Text(p));
        }, threeWay: true);
    }

    [Fact]
    public void NotificationResponse_without_payload_is_rejected()
    {
        var body = BodyOf(Build(b => b.StartMessage((byte)'A').WriteInt32(1).WriteCString("chan").EndMessage()));
        Assert.False(BackendMessages.TryReadNotificationResponse(body, out _, out _, out _));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ErrorResponse_and_NoticeResponse_enumerate_fields_at_every_split(bool notice)
    {
        var message = Build(b => b.ErrorResponse("ERROR", "42P01", "relation \"t\" does not exist", "some detail", notice));
        var code = notice ? BackendCode.NoticeResponse : BackendCode.ErrorResponse;
        ForEachSplit(message, code, body =>
        {
            Assert.True(BackendMessages.TryReadErrorResponse(body, out var error));
            var fields = new List<(ErrorFieldType, string)>();
            foreach (var field in error)
            {
                fields.Add((field.Type, Text(field.Value)));
            }

            Assert.Equal(
                [
                    (ErrorFieldType.LocalizedSeverity, "ERROR"),
                    (ErrorFieldType.Severity, "ERROR"),
                    (ErrorFieldType.Code, "42P01"),
                    (ErrorFieldType.Message, "relation \"t\" does not exist"),
                    (ErrorFieldType.Detail, "some detail"),
                ],
                fields);
            Assert.True(error.TryGetField(ErrorFieldType.Code, out var sqlState));
            Assert.Equal("42P01", Text(sqlState));
            Assert.False(error.TryGetField(ErrorFieldType.Hint, out _));

            var allocated = error.ToErrorFields();
            Assert.Equal("ERROR", allocated.Severity);
            Assert.Equal("42P01", allocated.Code);
            Assert.Equal("relation \"t\" does not exist", allocated.Message);
            Assert.Equal("some detail", allocated.Detail);
        }, threeWay: true);
    }

    [Fact]
    public void ErrorResponse_without_terminator_or_with_trailing_bytes_is_rejected()
    {
        var body = BodyOf(Build(b => b.ErrorResponse("FATAL", "28P01", "password authentication failed")));
        for (long length = 0; length < body.Length; length++)
        {
            Assert.False(BackendMessages.TryReadErrorResponse(body.Slice(0, length), out _));
        }

        var trailing = new ReadOnlySequence<byte>("Mx\0\0Z"u8.ToArray());
        Assert.False(BackendMessages.TryReadErrorResponse(trailing, out _));
        Assert.True(BackendMessages.TryReadErrorResponse(new ReadOnlySequence<byte>([0]), out var empty));
        foreach (var field in empty)
        {
            Assert.Fail("no fields expected");
        }
    }

    [Fact]
    public void ParameterDescription_reads_types_at_every_split()
    {
        ForEachSplit(Build(b => b.ParameterDescription(23, 25, 0, 3802)), BackendCode.ParameterDescription, body =>
        {
            Assert.True(BackendMessages.TryReadParameterDescription(body, out var types));
            Assert.Equal(4, types.Count);
            Assert.Equal(new uint[] { 23, 25, 0, 3802 }, new[] { types[0], types[1], types[2], types[3] });
        }, threeWay: true);
        Assert.False(BackendMessages.TryReadParameterDescription(new ReadOnlySequence<byte>([0, 1, 0, 0, 0]), out _));
    }

    [Fact]
    public void NegotiateProtocolVersion_reads_version_and_options_at_every_split()
    {
        var message = Build(b => b.NegotiateProtocolVersion(0, ["_pq_.compression", "_pq_.x"]));
        ForEachSplit(message, BackendCode.NegotiateProtocolVersion, body =>
        {
            Assert.True(BackendMessages.TryReadNegotiateProtocolVersion(body, out int version, out var options));
            Assert.Equal(StartupCodes.ProtocolVersion3, version);
            Assert.Equal(0, version & 0xFFFF);
            Assert.Equal(2, options.Count);
            var names = new List<string>();
            foreach (var option in options)
            {
                names.Add(Text(option));
            }

            Assert.Equal(["_pq_.compression", "_pq_.x"], names);
        }, threeWay: true);
    }

    [Fact]
    public void NegotiateProtocolVersion_with_a_wrong_option_count_is_rejected()
    {
        var tooFew = BodyOf(Build(b => b.StartMessage((byte)'v').WriteInt32(0x30002).WriteInt32(2).WriteCString("_pq_.a").EndMessage()));
        Assert.False(BackendMessages.TryReadNegotiateProtocolVersion(tooFew, out _, out _));
        var negative = BodyOf(Build(b => b.StartMessage((byte)'v').WriteInt32(0x30002).WriteInt32(-1).EndMessage()));
        Assert.False(BackendMessages.TryReadNegotiateProtocolVersion(negative, out _, out _));
        var none = BodyOf(Build(b => b.NegotiateProtocolVersion(2, [])));
        Assert.True(BackendMessages.TryReadNegotiateProtocolVersion(none, out int version, out var options));
        Assert.Equal((3 << 16) | 2, version);
        Assert.Equal(0, options.Count);
    }

    [Fact]
    public void FunctionCallResponse_reads_the_result_at_every_split()
    {
        ForEachSplit(Build(b => b.FunctionCallResponse([0, 0, 1, 0])), BackendCode.FunctionCallResponse, body =>
        {
            Assert.True(BackendMessages.TryReadFunctionCallResponse(body, out var result));
            Assert.Equal(256, BinaryPrimitives.ReadInt32BigEndian(result.Data.ToArray()));
        });
        ForEachSplit(Build(b => b.FunctionCallResponse(null)), BackendCode.FunctionCallResponse, body =>
        {
            Assert.True(BackendMessages.TryReadFunctionCallResponse(body, out var result));
            Assert.True(result.IsNull);
        });
        Assert.False(BackendMessages.TryReadFunctionCallResponse(new ReadOnlySequence<byte>([0, 0, 0, 2, 1]), out _));
    }

    [Theory]
    [InlineData(BackendCode.ParseComplete)]
    [InlineData(BackendCode.BindComplete)]
    [InlineData(BackendCode.CloseComplete)]
    [InlineData(BackendCode.NoData)]
    [InlineData(BackendCode.EmptyQueryResponse)]
    [InlineData(BackendCode.PortalSuspended)]
    [InlineData(BackendCode.CopyDone)]
    public void Messages_without_a_body_validate_empty(BackendCode code)
    {
        Assert.True(BackendMessages.HasEmptyBody(code));
        ForEachSplit(Build(b => b.Empty((byte)code)), code, body => Assert.True(BackendMessages.IsValidEmptyBody(body)));
        Assert.False(BackendMessages.IsValidEmptyBody(BodyOf(Raw((byte)code, 1))));
    }

    [Theory]
    [InlineData(BackendCode.ReadyForQuery)]
    [InlineData(BackendCode.DataRow)]
    [InlineData(BackendCode.ErrorResponse)]
    public void Messages_with_a_body_are_not_empty_kinds(BackendCode code) => Assert.False(BackendMessages.HasEmptyBody(code));

    [Fact]
    public void BackendKeyData_reads_a_3_0_key_and_a_3_2_key_without_copying()
    {
        ForEachSplit(Build(b => b.BackendKeyData(4242, 0x01020304)), BackendCode.BackendKeyData, body =>
        {
            Assert.True(BackendMessages.TryReadBackendKeyData(body, out int pid, out var key));
            Assert.Equal(4242, pid);
            Assert.Equal(new byte[] { 1, 2, 3, 4 }, key.ToArray());
        });

        var longKey = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
        ForEachSplit(Build(b => b.StartMessage((byte)'K').WriteInt32(7).WriteBytes(longKey).EndMessage()), BackendCode.BackendKeyData, body =>
        {
            Assert.True(BackendMessages.TryReadBackendKeyData(body, out int pid, out var key));
            Assert.Equal(7, pid);
            Assert.Equal(longKey, key.ToArray());
        });

        Assert.False(BackendMessages.TryReadBackendKeyData(new ReadOnlySequence<byte>(new byte[7]), out _, out _));
        Assert.False(BackendMessages.TryReadBackendKeyData(new ReadOnlySequence<byte>(new byte[4 + 257]), out _, out _));
    }

    [Fact]
    public void AuthenticationSasl_lists_mechanisms_at_every_split()
    {
        // Written as FastPool offers SCRAM to a TLS client, read as FastPool reads a server's offer.
        var message = Build(b => b.AuthenticationSasl(FastPool.Protocol.Scram.ScramSha256.PlusMechanism, FastPool.Protocol.Scram.ScramSha256.Mechanism));
        ForEachSplit(message, BackendCode.Authentication, body =>
        {
            Assert.True(BackendMessageReader.TryReadAuthentication(body, out var code, out var data));
            Assert.Equal(AuthenticationCode.Sasl, code);
            Assert.True(BackendMessages.TryReadSaslMechanisms(data, out var mechanisms));
            Assert.Equal(2, mechanisms.Count);
            var names = new List<string>();
            foreach (var name in mechanisms)
            {
                names.Add(Text(name));
            }

            Assert.Equal(["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"], names);
        }, threeWay: true);

        Assert.False(BackendMessages.TryReadSaslMechanisms(new ReadOnlySequence<byte>("SCRAM-SHA-256\0"u8.ToArray()), out _));
        Assert.False(BackendMessages.TryReadSaslMechanisms(new ReadOnlySequence<byte>("A\0\0x"u8.ToArray()), out _));
    }
}
