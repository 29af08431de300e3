using FastPool.Proxy.Pooling;

namespace FastPool.Proxy.Tests.Pooling;

public class LimitCounterTests
{
    [Fact]
    public void Limit_is_never_exceeded_under_contention()
    {
        var counter = new LimitCounter(7);
        int acquired = 0;
        Parallel.For(0, 1000, _ =>
        {
            if (counter.TryAcquire())
            {
                Interlocked.Increment(ref acquired);
            }
        });
        Assert.Equal(7, acquired);
        Assert.Equal(7, counter.Count);
        counter.Release();
        Assert.True(counter.TryAcquire());
        Assert.False(counter.TryAcquire());
    }

    [Fact]
    public void Zero_means_unlimited()
    {
        var counter = new LimitCounter(0);
        for (int i = 0; i < 10_000; i++)
        {
            Assert.True(counter.TryAcquire());
        }
    }
}
