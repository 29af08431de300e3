using System.Buffers;
using FastPool.Protocol.Tests.Infrastructure;
using static FastPool.Protocol.Tests.Infrastructure.TestMessages;

namespace FastPool.Protocol.Tests;

public class StartupPacketTests
{
    private static readonly KeyValuePair<string, string>[] PgbenchParameters =
    [
        new("user", "alice"),
        new("database", "pgbench"),
        new("application_name", "pgbench"),
        new("options", "-c geqo=off"),
        new("client_encoding", "UTF8"),
    ];

    [Fact]
    public void Startup_with_parameters_parses_at_every_split()
    {
        var packet = Build(b => b.StartupMessage(PgbenchParameters));
        foreach (var sequence in Splits.All(packet, threeWay: true))
        {
            var startup = ParseOk(sequence, packet.Length);
            Assert.Equal(StartupPacketKind.Startup, startup.Kind);
            Assert.Equal(3, startup.MajorVersion);
            Assert.Equal(0, startup.MinorVersion);
            Assert.Equal(PgbenchParameters, startup.Parameters);
            Assert.Empty(startup.ProtocolOptions);
            Assert.Equal("alice", startup.GetParameter("user"));
            Assert.Null(startup.GetParameter("nope"));
        }
    }

    [Fact]
    public void Every_prefix_of_a_startup_is_incomplete()
    {
        var packet = Build(b => b.StartupMessage(PgbenchParameters));
        for (int length = 0; length < packet.Length; length++)
        {
            foreach (var sequence in Splits.TwoWay(packet[..length]))
            {
                Assert.Equal(StartupParseStatus.Incomplete, StartupPacket.TryParse(sequence, out _, out long consumed));
                Assert.Equal(0, consumed);
            }
        }
    }

    [Fact]
    public void Bytes_after_the_packet_are_left_for_the_next_read()
    {
        var packet = Build(b => b.StartupMessage([new("user", "u")]));
        byte[] withQuery = [.. packet, .. Build(b => b.Query("SELECT 1"))];
        foreach (var sequence in Splits.TwoWay(withQuery))
        {
            ParseOk(sequence, packet.Length);
        }
    }

    [Fact]
    public void Protocol_3_2_with_pq_options_parses_at_every_split()
    {
        var packet = Startup((3 << 16) | 2, ("user", "bob"), ("_pq_.test_protocol_negotiation", "on"), ("database", "db"));
        foreach (var sequence in Splits.All(packet, threeWay: true))
        {
            var startup = ParseOk(sequence, packet.Length);
            Assert.Equal(3, startup.MajorVersion);
            Assert.Equal(2, startup.MinorVersion);
            Assert.Equal((3 << 16) | 2, startup.ProtocolVersion);
            Assert.Equal(["_pq_.test_protocol_negotiation"], startup.ProtocolOptions);
            Assert.Equal([new("user", "bob"), new("database", "db")], startup.Parameters);
        }
    }

    [Theory]
    [InlineData(StartupCodes.SslRequest, StartupPacketKind.SslRequest)]
    [InlineData(StartupCodes.GssEncRequest, StartupPacketKind.GssEncRequest)]
    public void Encryption_requests_parse_at_every_split(int code, StartupPacketKind kind)
    {
        var packet = Build(b => b.StartUntypedMessage().WriteInt32(code).EndMessage());
        Assert.Equal(8, packet.Length);
        foreach (var sequence in Splits.All(packet, threeWay: true))
        {
            var request = ParseOk(sequence, 8);
            Assert.Equal(kind, request.Kind);
            Assert.Equal(code, request.ProtocolVersion);
        }

        var longer = Build(b => b.StartUntypedMessage().WriteInt32(code).WriteInt32(0).EndMessage());
        Assert.Equal(StartupParseStatus.Malformed, StartupPacket.TryParse(new ReadOnlySequence<byte>(longer), out _, out _));
    }

    [Fact]
    public void CancelRequest_with_a_3_0_key_parses_at_every_split()
    {
        var packet = Build(b => b.CancelRequest(98765, [1, 2, 3, 4]));
        Assert.Equal(16, packet.Length);
        foreach (var sequence in Splits.All(packet, threeWay: true))
        {
            var cancel = ParseOk(sequence, 16);
            Assert.Equal(StartupPacketKind.CancelRequest, cancel.Kind);
            Assert.Equal(98765, cancel.CancelProcessId);
            Assert.Equal(new byte[] { 1, 2, 3, 4 }, cancel.CancelSecretKey);
        }
    }

    [Fact]
    public void CancelRequest_with_a_3_2_key_up_to_256_bytes()
    {
        var key = Enumerable.Range(0, 32).Select(i => (byte)(i * 7)).ToArray();
        var packet = Build(b => b.CancelRequest(5, key));
        foreach (var sequence in Splits.All(packet))
        {
            Assert.Equal(key, ParseOk(sequence, packet.Length).CancelSecretKey);
        }

        var longest = Build(b => b.CancelRequest(5, new byte[256]));
        Assert.Equal(StartupParseStatus.Ok, StartupPacket.TryParse(new ReadOnlySequence<byte>(longest), out _, out _));
        var tooLong = Build(b => b.CancelRequest(5, new byte[257]));
        Assert.Equal(StartupParseStatus.Malformed, StartupPacket.TryParse(new ReadOnlySequence<byte>(tooLong), out _, out _));
        var tooShort = Build(b => b.CancelRequest(5, new byte[3]));
        Assert.Equal(StartupParseStatus.Malformed, StartupPacket.TryParse(new ReadOnlySequence<byte>(tooShort), out _, out _));
    }

    [Fact]
    public void A_startup_without_the_list_terminator_is_malformed()
    {
        var packet = Build(b => b.StartUntypedMessage().WriteInt32(StartupCodes.ProtocolVersion3)
            .WriteCString("user").WriteCString("alice").EndMessage());
        foreach (var sequence in Splits.All(packet))
        {
            Assert.Equal(StartupParseStatus.Malformed, StartupPacket.TryParse(sequence, out _, out _));
        }

        var halfPair = Build(b => b.StartUntypedMessage().WriteInt32(StartupCodes.ProtocolVersion3).WriteCString("user").WriteByte(0).EndMessage());
        Assert.Equal(StartupParseStatus.Malformed, StartupPacket.TryParse(new ReadOnlySequence<byte>(halfPair), out _, out _));
        var noBody = Build(b => b.StartUntypedMessage().WriteInt32(StartupCodes.ProtocolVersion3).EndMessage());
        Assert.Equal(StartupParseStatus.Malformed, StartupPacket.TryParse(new ReadOnlySequence<byte>(noBody), out _, out _));
    }

    [Fact]
    public void Bytes_after_the_terminator_are_malformed()
    {
        var packet = Build(b => b.StartUntypedMessage().WriteInt32(StartupCodes.ProtocolVersion3)
            .WriteCString("user").WriteCString("alice").WriteByte(0).WriteByte(0).EndMessage());
        Assert.Equal(StartupParseStatus.Malformed, StartupPacket.TryParse(new ReadOnlySequence<byte>(packet), out _, out _));
    }

    [Theory]
    [InlineData(StartupPacket.MaxLength + 1)]
    [InlineData(int.MaxValue)]
    [InlineData(7)]
    [InlineData(4)]
    [InlineData(0)]
    [InlineData(-8)]
    public void A_length_out_of_range_is_malformed_as_soon_as_8_bytes_arrive(int length)
    {
        byte[] head = [(byte)(length >> 24), (byte)(length >> 16), (byte)(length >> 8), (byte)length, 0, 3, 0, 0];
        foreach (var sequence in Splits.All(head))
        {
            Assert.Equal(StartupParseStatus.Malformed, StartupPacket.TryParse(sequence, out _, out _));
        }
    }

    [Theory]
    [InlineData("database")]
    [InlineData("user")]
    public void A_startup_without_a_user_is_refused_for_that(string onlyParameter)
    {
        // "user" is required and must not be empty (55.7 StartupMessage); PostgreSQL answers 28000, not 08P01.
        var packet = Startup(StartupCodes.ProtocolVersion3, (onlyParameter, onlyParameter == "user" ? "" : "db"));
        foreach (var sequence in Splits.All(packet))
        {
            Assert.Equal(StartupParseStatus.NoUser, StartupPacket.TryParse(sequence, out _, out _));
        }
    }

    [Theory]
    [InlineData(2, 0)]
    [InlineData(4, 0)]
    [InlineData(1, 5)]
    public void An_unsupported_major_version_is_reported(int major, int minor)
    {
        var packet = Startup((major << 16) | minor, ("user", "alice"));
        foreach (var sequence in Splits.All(packet))
        {
            Assert.Equal(StartupParseStatus.UnsupportedVersion, StartupPacket.TryParse(sequence, out var startup, out _));
            Assert.NotNull(startup);
            Assert.Equal(major, startup.MajorVersion);
            Assert.Equal(minor, startup.MinorVersion);
        }
    }

    private static StartupPacket ParseOk(in ReadOnlySequence<byte> sequence, int expectedLength)
    {
        Assert.Equal(StartupParseStatus.Ok, StartupPacket.TryParse(sequence, out var packet, out long consumed));
        Assert.NotNull(packet);
        Assert.Equal(expectedLength, consumed);
        return packet;
    }

    private static byte[] Startup(int version, params (string Name, string Value)[] parameters) => Build(b =>
    {
        b.StartUntypedMessage().WriteInt32(version);
        foreach (var (name, value) in parameters)
        {
            b.WriteCString(name).WriteCString(value);
        }

        return b.WriteByte(0).EndMessage();
    });
}
