using Pargs.Models.Cpu;

namespace Pargs.Tests.Models;

/// <summary>The worker pool of the CPU kernels: every index exactly once, aligned chunks, failures surface and the pool survives.</summary>
public class CpuThreadsTests
{
    [Fact]
    public void For_covers_the_range_once_in_aligned_chunks_and_rethrows_worker_failures()
    {
        using var threadCount = CpuThreads.Scoped(2);
        var hits = new int[1003];
        var starts = new System.Collections.Concurrent.ConcurrentBag<int>();
        CpuThreads.For(hits.Length, (lo, hi) =>
        {
            starts.Add(lo);
            for (int i = lo; i < hi; i++) Interlocked.Increment(ref hits[i]);
        }, align: 4);
        Assert.All(hits, h => Assert.Equal(1, h));
        Assert.All(starts, s => Assert.Equal(0, s % 4));

        // The last chunk throws (a worker's, or the caller's when another test holds the pool and For runs inline):
        // the exception reaches the caller, and the pool still works after.
        var error = Assert.Throws<InvalidOperationException>(() =>
            CpuThreads.For(1000, (lo, hi) => { if (hi == 1000) throw new InvalidOperationException("chunk failed"); }));
        Assert.Equal("chunk failed", error.Message);
        int total = 0;
        CpuThreads.For(1000, (lo, hi) => Interlocked.Add(ref total, hi - lo));
        Assert.Equal(1000, total);
    }

    [Fact]
    public void A_nested_For_runs_its_range_on_the_calling_thread()
    {
        // The outer For holds the workers: an inner For on either thread (the dispatcher's re-entrant one included)
        // must run inline, not post to a worker that is still busy with the outer chunk.
        using var threadCount = CpuThreads.Scoped(2);
        for (int repeat = 0; repeat < 50; repeat++)
        {
            var hits = new int[2, 1000];
            CpuThreads.For(2, (lo, hi) =>
            {
                for (int part = lo; part < hi; part++)
                {
                    int thread = Environment.CurrentManagedThreadId;
                    CpuThreads.For(1000, (a, b) =>
                    {
                        Assert.Equal(thread, Environment.CurrentManagedThreadId);
                        for (int i = a; i < b; i++) Interlocked.Increment(ref hits[part, i]);
                    });
                }
            });
            for (int part = 0; part < 2; part++)
                for (int i = 0; i < 1000; i++) Assert.Equal(1, hits[part, i]);
        }
    }

    [Fact]
    public void A_worker_that_went_to_sleep_is_woken_and_every_chunk_runs_once()
    {
        // A spin bound of 0: the worker sleeps as soon as it is idle, so every For below posts to a sleeping worker (or
        // runs the chunk itself when the worker is slow to wake). Each index must still run exactly once, in order of
        // jobs, and the chunk the worker does take must be done before For returns.
        using var threadCount = CpuThreads.Scoped(2);
        long spin = CpuThreads.SpinMicroseconds;
        CpuThreads.SpinMicroseconds = 0;
        try
        {
            for (int job = 0; job < 200; job++)
            {
                var hits = new int[64];
                CpuThreads.For(hits.Length, (lo, hi) =>
                {
                    Thread.SpinWait(2000); // long enough for a woken worker to claim its chunk
                    for (int i = lo; i < hi; i++) Interlocked.Increment(ref hits[i]);
                });
                Assert.All(hits, h => Assert.Equal(1, h));
                if (job % 50 == 0) Thread.Sleep(2); // the worker is surely asleep now
            }
        }
        finally { CpuThreads.SpinMicroseconds = spin; }
    }

    [Fact]
    public void Inside_a_split_body_the_count_reads_one()
    {
        // Both chunks of a split (the caller's, and the worker's or the one the caller takes over) see Count = 1, so a
        // product inside them does not cut itself into chunks nobody else can claim.
        using var threadCount = CpuThreads.Scoped(2);
        var seen = new System.Collections.Concurrent.ConcurrentBag<int>();
        for (int repeat = 0; repeat < 20; repeat++)
            CpuThreads.For(2, (lo, hi) => { for (int i = lo; i < hi; i++) seen.Add(CpuThreads.Count); });
        Assert.Equal(40, seen.Count);
        Assert.All(seen, count => Assert.Equal(1, count));
    }

    [Fact]
    public void Inside_a_serial_scope_For_runs_on_the_calling_thread_and_the_count_reads_one()
    {
        using var threadCount = CpuThreads.Scoped(2);
        int thread = Environment.CurrentManagedThreadId, chunks = 0;
        using (CpuThreads.Serial())
        {
            Assert.Equal(1, CpuThreads.Count);
            CpuThreads.For(1000, (lo, hi) =>
            {
                Assert.Equal(thread, Environment.CurrentManagedThreadId);
                Assert.Equal((0, 1000), (lo, hi));
                chunks++;
            });
            using (CpuThreads.Serial()) Assert.Equal(1, CpuThreads.Count);
            Assert.Equal(1, CpuThreads.Count); // scopes nest
        }
        Assert.Equal(1, chunks);
    }

    [Fact]
    public void Thread_count_must_be_positive()
        => Assert.Throws<PargsException>(() => CpuThreads.Count = 0);
}
