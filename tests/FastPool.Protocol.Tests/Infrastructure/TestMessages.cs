using System.Text;

namespace FastPool.Protocol.Tests.Infrastructure;

/// <summary>
/// Writers for the messages FastPool only ever reads, built with <see cref="MessageBuilder"/>'s primitives
/// straight from the layouts in 55.7 "Message Formats". A null value is written as length -1.
/// </summary>
internal static class TestMessages
{
    public static byte[] Build(Func<MessageBuilder, MessageBuilder> write) => Messages.Encode(write);

    /// <summary>A message with the given code and raw body bytes, length computed.</summary>
    public static byte[] Raw(byte code, params byte[] body) => Build(b => b.StartMessage(code).WriteBytes(body).EndMessage());

    public static MessageBuilder Parse(this MessageBuilder b, string statement, string query, params uint[] parameterTypes)
    {
        b.StartMessage((byte)FrontendCode.Parse).WriteCString(statement).WriteCString(query).WriteInt16((short)parameterTypes.Length);
        foreach (var oid in parameterTypes)
        {
            b.WriteInt32((int)oid);
        }

        return b.EndMessage();
    }

    public static MessageBuilder Bind(this MessageBuilder b, string portal, string statement, short[] parameterFormats, byte[]?[] values, short[] resultFormats)
    {
        b.StartMessage((byte)FrontendCode.Bind).WriteCString(portal).WriteCString(statement);
        b.FormatCodes(parameterFormats).Values(values);
        return b.FormatCodes(resultFormats).EndMessage();
    }

    public static MessageBuilder Describe(this MessageBuilder b, TargetKind kind, string name) =>
        b.StartMessage((byte)FrontendCode.Describe).WriteByte((byte)kind).WriteCString(name).EndMessage();

    public static MessageBuilder Close(this MessageBuilder b, TargetKind kind, string name) =>
        b.StartMessage((byte)FrontendCode.Close).WriteByte((byte)kind).WriteCString(name).EndMessage();

    public static MessageBuilder Execute(this MessageBuilder b, string portal, int maxRows) =>
        b.StartMessage((byte)FrontendCode.Execute).WriteCString(portal).WriteInt32(maxRows).EndMessage();

    public static MessageBuilder Sync(this MessageBuilder b) => b.StartMessage((byte)FrontendCode.Sync).EndMessage();

    public static MessageBuilder CopyData(this MessageBuilder b, byte code, ReadOnlySpan<byte> data) =>
        b.StartMessage(code).WriteBytes(data).EndMessage();

    public static MessageBuilder CopyFail(this MessageBuilder b, string message) =>
        b.StartMessage((byte)FrontendCode.CopyFail).WriteCString(message).EndMessage();

    public static MessageBuilder FunctionCall(this MessageBuilder b, uint oid, short[] argumentFormats, byte[]?[] arguments, short resultFormat)
    {
        b.StartMessage((byte)FrontendCode.FunctionCall).WriteInt32((int)oid).FormatCodes(argumentFormats).Values(arguments);
        return b.WriteInt16(resultFormat).EndMessage();
    }

    public static MessageBuilder RowDescription(this MessageBuilder b, params Field[] fields)
    {
        b.StartMessage((byte)BackendCode.RowDescription).WriteInt16((short)fields.Length);
        foreach (var f in fields)
        {
            b.WriteCString(f.Name).WriteInt32((int)f.TableOid).WriteInt16(f.Attribute).WriteInt32((int)f.TypeOid)
                .WriteInt16(f.TypeSize).WriteInt32(f.TypeModifier).WriteInt16((short)f.Format);
        }

        return b.EndMessage();
    }

    public static MessageBuilder DataRow(this MessageBuilder b, params byte[]?[] values)
    {
        b.StartMessage((byte)BackendCode.DataRow);
        return b.Values(values).EndMessage();
    }

    public static MessageBuilder CommandComplete(this MessageBuilder b, string tag) =>
        b.StartMessage((byte)BackendCode.CommandComplete).WriteCString(tag).EndMessage();

    public static MessageBuilder CopyResponse(this MessageBuilder b, BackendCode code, byte overallFormat, params short[] columnFormats) =>
        b.StartMessage((byte)code).WriteByte(overallFormat).FormatCodes(columnFormats).EndMessage();

    public static MessageBuilder NotificationResponse(this MessageBuilder b, int processId, string channel, string payload) =>
        b.StartMessage((byte)BackendCode.NotificationResponse).WriteInt32(processId).WriteCString(channel).WriteCString(payload).EndMessage();

    public static MessageBuilder ParameterDescription(this MessageBuilder b, params uint[] types)
    {
        b.StartMessage((byte)BackendCode.ParameterDescription).WriteInt16((short)types.Length);
        foreach (var oid in types)
        {
            b.WriteInt32((int)oid);
        }

        return b.EndMessage();
    }

    public static MessageBuilder FunctionCallResponse(this MessageBuilder b, byte[]? result)
    {
        b.StartMessage((byte)BackendCode.FunctionCallResponse);
        return (result is null ? b.WriteInt32(-1) : b.WriteInt32(result.Length).WriteBytes(result)).EndMessage();
    }

    public static MessageBuilder Empty(this MessageBuilder b, byte code) => b.StartMessage(code).EndMessage();

    public static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    private static MessageBuilder FormatCodes(this MessageBuilder b, short[] formats)
    {
        b.WriteInt16((short)formats.Length);
        foreach (var f in formats)
        {
            b.WriteInt16(f);
        }

        return b;
    }

    private static MessageBuilder Values(this MessageBuilder b, byte[]?[] values)
    {
        b.WriteInt16((short)values.Length);
        foreach (var v in values)
        {
            if (v is null)
            {
                b.WriteInt32(-1);
            }
            else
            {
                b.WriteInt32(v.Length).WriteBytes(v);
            }
        }

        return b;
    }

    public sealed record Field(string Name, uint TableOid, short Attribute, uint TypeOid, short TypeSize, int TypeModifier, FormatCode Format);
}
