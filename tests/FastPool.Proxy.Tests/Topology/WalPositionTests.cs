using FastPool.Proxy.Topology;

namespace FastPool.Proxy.Tests.Topology;

/// <summary>
/// read_your_writes compares a standby's replay position with the primary's insert position after a write. On a WAL
/// page (or file) that holds no record yet, that position points past the page header, where no replayed record can
/// end: counted as is, an idle primary would keep the client's reads off every standby until unrelated WAL arrived.
/// </summary>
public sealed class WalPositionTests
{
    [Fact]
    public void After_a_wal_file_switch_the_bound_is_the_start_of_the_new_file()
    {
        // 0/3000028 is 40 bytes (the long page header) into the file that starts at 0/3000000.
        Assert.Equal(0x3000000UL, NodeMonitor.CommitBound(["0/3000028", "40", "8192"]));
    }

    [Fact]
    public void On_a_fresh_page_the_bound_is_the_page_boundary()
    {
        // 0/3002018: 24 bytes (the short page header) into the page at 0/3002000, the file's second page.
        Assert.Equal(0x3002000UL, NodeMonitor.CommitBound(["0/3002018", "8216", "8192"]));
    }

    [Fact]
    public void A_position_after_a_record_is_kept()
    {
        Assert.Equal(0x1_0300_2A40UL, NodeMonitor.CommitBound(["1/3002A40", "10816", "8192"]));

        // 24 bytes into a file's first page is inside its long header, not a page that starts empty: left as it is.
        Assert.Equal(0x3000018UL, NodeMonitor.CommitBound(["0/3000018", "24", "8192"]));
    }

    [Fact]
    public void An_unreadable_row_means_no_standby_is_known_to_have_the_write()
    {
        Assert.Equal(ulong.MaxValue, NodeMonitor.CommitBound([null, null, null]));
        Assert.Equal(ulong.MaxValue, NodeMonitor.CommitBound(["garbage"]));

        // Without the offset, the position is used as the server gave it.
        Assert.Equal(0x3000028UL, NodeMonitor.CommitBound(["0/3000028"]));
    }
}
