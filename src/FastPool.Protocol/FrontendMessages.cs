using System.Buffers;

namespace FastPool.Protocol;

/// <summary>Parse (55.7): statement name, query text, and the parameter types the client specified.</summary>
public readonly struct ParseMessage
{
    internal ParseMessage(ReadOnlySequence<byte> statementName, ReadOnlySequence<byte> query, OidList parameterTypes)
    {
        StatementName = statementName;
        Query = query;
        ParameterTypes = parameterTypes;
    }

    /// <summary>Empty for the unnamed statement (55.7 Parse).</summary>
    public ReadOnlySequence<byte> StatementName { get; }

    public ReadOnlySequence<byte> Query { get; }

    /// <summary>Type oids; may be fewer than the query's parameters, and 0 leaves a type unspecified (55.7 Parse).</summary>
    public OidList ParameterTypes { get; }
}

/// <summary>Bind (55.7): portal, source statement, parameter formats and values, result formats.</summary>
public readonly struct BindMessage
{
    internal BindMessage(
        ReadOnlySequence<byte> portalName,
        ReadOnlySequence<byte> statementName,
        FormatCodeList parameterFormats,
        FieldValueList parameters,
        FormatCodeList resultFormats)
    {
        PortalName = portalName;
        StatementName = statementName;
        ParameterFormats = parameterFormats;
        Parameters = parameters;
        ResultFormats = resultFormats;
    }

    /// <summary>Empty for the unnamed portal (55.7 Bind).</summary>
    public ReadOnlySequence<byte> PortalName { get; }

    /// <summary>Empty for the unnamed statement (55.7 Bind).</summary>
    public ReadOnlySequence<byte> StatementName { get; }

    /// <summary>None (all text), one (for all), or one per parameter (55.7 Bind); see <see cref="FormatCodeList.For"/>.</summary>
    public FormatCodeList ParameterFormats { get; }

    public FieldValueList Parameters { get; }

    /// <summary>None (all text), one (for all), or one per result column (55.7 Bind).</summary>
    public FormatCodeList ResultFormats { get; }
}

/// <summary>FunctionCall (55.7): the legacy fast-path call by function oid.</summary>
public readonly struct FunctionCallMessage
{
    internal FunctionCallMessage(uint functionOid, FormatCodeList argumentFormats, FieldValueList arguments, FormatCode resultFormat)
    {
        FunctionOid = functionOid;
        ArgumentFormats = argumentFormats;
        Arguments = arguments;
        ResultFormat = resultFormat;
    }

    public uint FunctionOid { get; }

    /// <summary>None (all text), one (for all), or one per argument, as for Bind (55.7 FunctionCall).</summary>
    public FormatCodeList ArgumentFormats { get; }

    public FieldValueList Arguments { get; }

    public FormatCode ResultFormat { get; }
}
