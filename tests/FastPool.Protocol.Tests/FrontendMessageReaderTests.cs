using System.Buffers;
using FastPool.Protocol.Tests.Infrastructure;
using static FastPool.Protocol.Tests.Infrastructure.Framed;
using static FastPool.Protocol.Tests.Infrastructure.TestMessages;

namespace FastPool.Protocol.Tests;

public class FrontendMessageReaderTests
{
    [Fact]
    public void Query_reads_the_sql_at_every_split()
    {
        const string sql = "SELECT 'grüße', 1; SELECT 2";
        var message = Build(b => b.Query(sql));
        ForEachSplit(message, FrontendCode.Query, body =>
        {
            Assert.True(FrontendMessageReader.TryReadQuery(body, out var text));
            Assert.Equal(sql, Text(text));
        }, threeWay: true);
    }

    [Fact]
    public void Query_without_terminator_or_with_trailing_bytes_is_rejected()
    {
        Assert.False(FrontendMessageReader.TryReadQuery(new ReadOnlySequence<byte>(Utf8("SELECT 1")), out _));
        Assert.False(FrontendMessageReader.TryReadQuery(new ReadOnlySequence<byte>(Utf8("SELECT 1\0x")), out _));
        Assert.False(FrontendMessageReader.TryReadQuery(ReadOnlySequence<byte>.Empty, out _));
    }

    [Fact]
    public void Parse_reads_name_query_and_parameter_types_at_every_split()
    {
        var message = Build(b => b.Parse("stmt_1", "SELECT $1::int4, $2", 23, 0, uint.MaxValue));
        ForEachSplit(message, FrontendCode.Parse, body =>
        {
            Assert.True(FrontendMessageReader.TryReadParse(body, out var parse));
            Assert.Equal("stmt_1", Text(parse.StatementName));
            Assert.Equal("SELECT $1::int4, $2", Text(parse.Query));
            Assert.Equal(3, parse.ParameterTypes.Count);
            Assert.Equal(23u, parse.ParameterTypes[0]);
            Assert.Equal(0u, parse.ParameterTypes[1]);
            Assert.Equal(uint.MaxValue, parse.ParameterTypes[2]);
            Assert.Throws<ArgumentOutOfRangeException>(() => parse.ParameterTypes[3]);
        }, threeWay: true);
    }

    [Fact]
    public void Parse_of_the_unnamed_statement_without_types()
    {
        var message = Build(b => b.Parse("", "BEGIN"));
        ForEachSplit(message, FrontendCode.Parse, body =>
        {
            Assert.True(FrontendMessageReader.TryReadParse(body, out var parse));
            Assert.True(parse.StatementName.IsEmpty);
            Assert.Equal("BEGIN", Text(parse.Query));
            Assert.Equal(0, parse.ParameterTypes.Count);
        });
    }

    [Fact]
    public void Parse_truncated_anywhere_is_rejected()
    {
        var message = Build(b => b.Parse("s", "SELECT $1", 23));
        var body = BodyOf(message);
        for (long length = 0; length < body.Length; length++)
        {
            Assert.False(FrontendMessageReader.TryReadParse(body.Slice(0, length), out _));
        }
    }

    [Fact]
    public void Bind_reads_formats_values_and_nulls_at_every_split()
    {
        var message = Build(b => b.Bind("portal", "stmt", [0, 1], [Utf8("42"), null, [], [0, 0, 0, 7]], [1]));
        ForEachSplit(message, FrontendCode.Bind, body =>
        {
            Assert.True(FrontendMessageReader.TryReadBind(body, out var bind));
            Assert.Equal("portal", Text(bind.PortalName));
            Assert.Equal("stmt", Text(bind.StatementName));
            Assert.Equal(2, bind.ParameterFormats.Count);
            Assert.Equal(FormatCode.Text, bind.ParameterFormats[0]);
            Assert.Equal(FormatCode.Binary, bind.ParameterFormats[1]);
            Assert.Equal(4, bind.Parameters.Count);

            var values = new List<(int Length, bool IsNull, byte[] Data)>();
            foreach (var value in bind.Parameters)
            {
                values.Add((value.Length, value.IsNull, value.Data.ToArray()));
            }

            Assert.Equal(4, values.Count);
            Assert.Equal((2, false), (values[0].Length, values[0].IsNull));
            Assert.Equal("42"u8.ToArray(), values[0].Data);
            Assert.Equal((-1, true), (values[1].Length, values[1].IsNull));
            Assert.Empty(values[1].Data);
            Assert.Equal((0, false), (values[2].Length, values[2].IsNull));
            Assert.Equal(new byte[] { 0, 0, 0, 7 }, values[3].Data);

            Assert.Equal(1, bind.ResultFormats.Count);
            Assert.Equal(FormatCode.Binary, bind.ResultFormats.For(5));
        }, threeWay: true);
    }

    [Fact]
    public void Bind_without_format_codes_means_text_for_all()
    {
        var message = Build(b => b.Bind("", "", [], [Utf8("x")], []));
        ForEachSplit(message, FrontendCode.Bind, body =>
        {
            Assert.True(FrontendMessageReader.TryReadBind(body, out var bind));
            Assert.True(bind.PortalName.IsEmpty);
            Assert.True(bind.StatementName.IsEmpty);
            Assert.Equal(0, bind.ParameterFormats.Count);
            Assert.Equal(FormatCode.Text, bind.ParameterFormats.For(0));
            Assert.Equal(0, bind.ResultFormats.Count);
            Assert.Equal(FormatCode.Text, bind.ResultFormats.For(3));
        });
    }

    [Fact]
    public void Bind_with_more_than_32767_parameters_reads_the_count_unsigned()
    {
        const int count = 40000;
        var message = Build(b => b.Bind("", "s", [], new byte[]?[count], []));
        Assert.True(FrontendMessageReader.TryReadBind(BodyOf(message), out var bind));
        Assert.Equal(count, bind.Parameters.Count);
        int nulls = 0;
        foreach (var value in bind.Parameters)
        {
            nulls += value.IsNull ? 1 : 0;
        }

        Assert.Equal(count, nulls);
    }

    [Fact]
    public void Bind_with_a_value_longer_than_the_body_or_a_bad_length_is_rejected()
    {
        var message = Build(b => b.Bind("", "", [], [Utf8("abc")], []));
        var body = BodyOf(message);
        for (long length = 0; length < body.Length; length++)
        {
            Assert.False(FrontendMessageReader.TryReadBind(body.Slice(0, length), out _));
        }

        // A value length below -1 (55.7 Bind allows only -1 as a marker).
        var bad = Raw((byte)FrontendCode.Bind, [0, 0, 0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFE, 0, 0]);
        Assert.False(FrontendMessageReader.TryReadBind(BodyOf(bad), out _));
    }

    [Theory]
    [InlineData(TargetKind.Statement, "stmt_9")]
    [InlineData(TargetKind.Portal, "")]
    public void Describe_reads_kind_and_name_at_every_split(TargetKind kind, string name)
    {
        var message = Build(b => b.Describe(kind, name));
        ForEachSplit(message, FrontendCode.Describe, body =>
        {
            Assert.True(FrontendMessageReader.TryReadDescribe(body, out var k, out var n));
            Assert.Equal(kind, k);
            Assert.Equal(name, Text(n));
        }, threeWay: true);
    }

    [Theory]
    [InlineData(TargetKind.Statement, "s")]
    [InlineData(TargetKind.Portal, "c1")]
    public void Close_reads_kind_and_name_at_every_split(TargetKind kind, string name)
    {
        var message = Build(b => b.Close(kind, name));
        ForEachSplit(message, FrontendCode.Close, body =>
        {
            Assert.True(FrontendMessageReader.TryReadClose(body, out var k, out var n));
            Assert.Equal(kind, k);
            Assert.Equal(name, Text(n));
        });
    }

    [Fact]
    public void Describe_and_close_reject_an_unknown_kind()
    {
        var body = new ReadOnlySequence<byte>("Xname\0"u8.ToArray());
        Assert.False(FrontendMessageReader.TryReadDescribe(body, out _, out _));
        Assert.False(FrontendMessageReader.TryReadClose(body, out _, out _));
        Assert.False(FrontendMessageReader.TryReadClose(new ReadOnlySequence<byte>("S"u8.ToArray()), out _, out _));
    }

    [Theory]
    [InlineData("", 0)]
    [InlineData("portal_1", 100)]
    public void Execute_reads_portal_and_row_limit_at_every_split(string portal, int maxRows)
    {
        var message = Build(b => b.Execute(portal, maxRows));
        ForEachSplit(message, FrontendCode.Execute, body =>
        {
            Assert.True(FrontendMessageReader.TryReadExecute(body, out var p, out int rows));
            Assert.Equal(portal, Text(p));
            Assert.Equal(maxRows, rows);
        }, threeWay: true);
    }

    [Fact]
    public void Execute_truncated_is_rejected()
    {
        var body = BodyOf(Build(b => b.Execute("p", 5)));
        Assert.False(FrontendMessageReader.TryReadExecute(body.Slice(0, body.Length - 1), out _, out _));
    }

    [Fact]
    public void CopyData_is_the_whole_body_at_every_split()
    {
        byte[] data = [1, 0, 2, 0, 0, 9, 255];
        var message = Build(b => b.CopyData((byte)FrontendCode.CopyData, data));
        ForEachSplit(message, FrontendCode.CopyData, body => Assert.Equal(data, FrontendMessageReader.ReadCopyData(body).ToArray()));
    }

    [Fact]
    public void CopyFail_reads_the_message_at_every_split()
    {
        var message = Build(b => b.CopyFail("client gave up"));
        ForEachSplit(message, FrontendCode.CopyFail, body =>
        {
            Assert.True(FrontendMessageReader.TryReadCopyFail(body, out var text));
            Assert.Equal("client gave up", Text(text));
        });
    }

    [Fact]
    public void FunctionCall_reads_oid_formats_arguments_and_result_format_at_every_split()
    {
        var message = Build(b => b.FunctionCall(1598, [1], [[0, 0, 0, 42], null], 1));
        ForEachSplit(message, FrontendCode.FunctionCall, body =>
        {
            Assert.True(FrontendMessageReader.TryReadFunctionCall(body, out var call));
            Assert.Equal(1598u, call.FunctionOid);
            Assert.Equal(1, call.ArgumentFormats.Count);
            Assert.Equal(FormatCode.Binary, call.ArgumentFormats.For(1));
            Assert.Equal(2, call.Arguments.Count);
            int i = 0;
            foreach (var argument in call.Arguments)
            {
                if (i++ == 0)
                {
                    Assert.Equal(new byte[] { 0, 0, 0, 42 }, argument.Data.ToArray());
                }
                else
                {
                    Assert.True(argument.IsNull);
                }
            }

            Assert.Equal(2, i);
            Assert.Equal(FormatCode.Binary, call.ResultFormat);
        }, threeWay: true);
    }

    [Fact]
    public void FunctionCall_missing_the_result_format_is_rejected()
    {
        var body = BodyOf(Build(b => b.FunctionCall(1, [], [], 0)));
        Assert.False(FrontendMessageReader.TryReadFunctionCall(body.Slice(0, body.Length - 2), out _));
    }

    [Fact]
    public void PasswordMessage_reads_the_password_at_every_split()
    {
        var message = Build(b => b.PasswordMessage("md5abcdef0123456789"));
        ForEachSplit(message, FrontendCode.Password, body =>
        {
            Assert.True(FrontendMessageReader.TryReadPasswordMessage(body, out var password));
            Assert.Equal("md5abcdef0123456789", Text(password));
        });
    }

    [Fact]
    public void SaslInitialResponse_reads_mechanism_and_data_at_every_split()
    {
        var clientFirst = Utf8("n,,n=,r=rOprNGfwEbeRWgbNEkqO");
        var message = Build(b => b.SaslInitialResponse("SCRAM-SHA-256", clientFirst));
        ForEachSplit(message, FrontendCode.Password, body =>
        {
            Assert.True(FrontendMessageReader.TryReadSaslInitialResponse(body, out var mechanism, out var data));
            Assert.Equal("SCRAM-SHA-256", Text(mechanism));
            Assert.False(data.IsNull);
            Assert.Equal(clientFirst.Length, data.Length);
            Assert.Equal(clientFirst, data.Data.ToArray());
        }, threeWay: true);
    }

    [Fact]
    public void SaslInitialResponse_without_initial_data()
    {
        var message = Build(b => b.SaslInitialResponse("SCRAM-SHA-256-PLUS", null));
        ForEachSplit(message, FrontendCode.Password, body =>
        {
            Assert.True(FrontendMessageReader.TryReadSaslInitialResponse(body, out var mechanism, out var data));
            Assert.Equal("SCRAM-SHA-256-PLUS", Text(mechanism));
            Assert.True(data.IsNull);
        });
    }

    [Fact]
    public void SaslInitialResponse_with_a_wrong_data_length_is_rejected()
    {
        var body = BodyOf(Build(b => b.SaslInitialResponse("SCRAM-SHA-256", Utf8("abc"))));
        Assert.False(FrontendMessageReader.TryReadSaslInitialResponse(body.Slice(0, body.Length - 1), out _, out _));
        var longer = BodyOf(Build(b => b.StartMessage((byte)'p').WriteCString("M").WriteInt32(1).WriteBytes("ab"u8).EndMessage()));
        Assert.False(FrontendMessageReader.TryReadSaslInitialResponse(longer, out _, out _));
        var noData = BodyOf(Build(b => b.StartMessage((byte)'p').WriteCString("M").WriteInt32(-1).WriteByte(1).EndMessage()));
        Assert.False(FrontendMessageReader.TryReadSaslInitialResponse(noData, out _, out _));
    }

    [Fact]
    public void SaslResponse_and_GssResponse_are_the_whole_body()
    {
        var clientFinal = Utf8("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        var message = Build(b => b.SaslResponse(clientFinal));
        ForEachSplit(message, FrontendCode.Password, body =>
        {
            Assert.Equal(clientFinal, FrontendMessageReader.ReadSaslResponse(body).ToArray());
            Assert.Equal(clientFinal, FrontendMessageReader.ReadGssResponse(body).ToArray());
        });
    }

    [Theory]
    [InlineData(FrontendCode.Sync)]
    [InlineData(FrontendCode.Flush)]
    [InlineData(FrontendCode.CopyDone)]
    [InlineData(FrontendCode.Terminate)]
    public void Messages_without_a_body_validate_empty(FrontendCode code)
    {
        Assert.True(FrontendMessageReader.HasEmptyBody(code));
        ForEachSplit(Build(b => b.Empty((byte)code)), code, body => Assert.True(FrontendMessageReader.IsValidEmptyBody(body)));
        Assert.False(FrontendMessageReader.IsValidEmptyBody(BodyOf(Raw((byte)code, 0))));
    }

    [Theory]
    [InlineData(FrontendCode.Query)]
    [InlineData(FrontendCode.Bind)]
    [InlineData(FrontendCode.CopyData)]
    [InlineData(FrontendCode.Password)]
    public void Messages_with_a_body_are_not_empty_kinds(FrontendCode code) => Assert.False(FrontendMessageReader.HasEmptyBody(code));
}
