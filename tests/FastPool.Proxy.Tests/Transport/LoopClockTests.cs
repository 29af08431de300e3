using FastPool.Proxy.Transport;

namespace FastPool.Proxy.Tests.Transport;

public sealed class LoopClockTests
{
    [Fact]
    public void Inside_a_loop_event_every_reading_is_the_first_one_and_outside_it_the_clock_moves()
    {
        // Run on a thread of its own: the clock's state is per thread, as each transport loop has its own.
        long first = 0, later = 0, nextEvent = 0, outside1 = 0, outside2 = 0;
        var thread = new Thread(() =>
        {
            LoopClock.Tick();
            first = LoopClock.Instance.GetTimestamp();
            SpinUntilTheRealClockPasses(first);
            later = LoopClock.Instance.GetTimestamp();

            LoopClock.Tick();
            nextEvent = LoopClock.Instance.GetTimestamp();

            LoopClock.Idle();
            outside1 = LoopClock.Instance.GetTimestamp();
            SpinUntilTheRealClockPasses(outside1);
            outside2 = LoopClock.Instance.GetTimestamp();
        });
        thread.Start();
        thread.Join();

        Assert.Equal(first, later);
        Assert.True(nextEvent > first, "a new event reads the clock afresh");
        Assert.True(outside2 > outside1, "outside an event every reading is the real clock");
    }

    [Fact]
    public void A_thread_that_runs_no_loop_reads_the_real_clock()
    {
        long a = LoopClock.Instance.GetTimestamp();
        SpinUntilTheRealClockPasses(a);
        Assert.True(LoopClock.Instance.GetTimestamp() > a);
    }

    private static void SpinUntilTheRealClockPasses(long timestamp)
    {
        while (System.Diagnostics.Stopwatch.GetTimestamp() <= timestamp)
        {
            Thread.SpinWait(10);
        }
    }
}
