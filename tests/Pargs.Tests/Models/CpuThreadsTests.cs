using Pargs.Models.Cpu;

namespace Pargs.Tests.Models;

/// <summary>
/// The worker pool of the CPU kernels: every index exactly once, aligned chunks, failures surface and the pool survives.
/// Alone (<see cref="ThreadCountCollection"/>): its tests read the process-wide count back after setting it, and a class
/// running beside it that sets the count (CpuThreads.Scoped) failed one of them once (read 1 where it had set 2).
/// </summary>
[Collection(ThreadCountCollection.Name)]
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
        // A spin bound of 0: the worker sleeps as soon as it is idle, so every For below posts to a sleeping worker. The
        // caller's chunk waits (at most 2 s) for the worker's chunk to start: the caller cannot take that chunk over while
        // it waits, so a lost wake-up leaves the chunk to the caller after the timeout, and the test sees it ran there.
        using var threadCount = CpuThreads.Scoped(2);
        long spin = CpuThreads.SpinMicroseconds;
        CpuThreads.SpinMicroseconds = 0;
        try
        {
            int splitJobs = 0;
            for (int job = 0; job < 200; job++)
            {
                var hits = new int[64];
                using var secondChunkStarted = new ManualResetEventSlim();
                string? secondChunkThread = null;
                CpuThreads.For(hits.Length, (lo, hi) =>
                {
                    if (lo > 0)
                    {
                        secondChunkThread = Thread.CurrentThread.Name ?? "(unnamed)";
                        secondChunkStarted.Set();
                    }
                    else if (hi < hits.Length) secondChunkStarted.Wait(TimeSpan.FromSeconds(2));
                    for (int i = lo; i < hi; i++) Interlocked.Increment(ref hits[i]);
                });
                Assert.All(hits, h => Assert.Equal(1, h));
                // One chunk of the whole range: another test held the workers, and For ran inline (correct, nothing to check).
                if (secondChunkThread is not null)
                {
                    splitJobs++;
                    Assert.StartsWith("pargs-cpu-", secondChunkThread);
                }
                if (job % 50 == 0) Thread.Sleep(2); // the worker is surely asleep now
            }
            Assert.True(splitJobs > 0, "no For split over the two threads");
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

    /// <summary>Whether a For over two threads splits within a few tries (another test holding the workers makes it run inline).</summary>
    static bool ForSplits()
    {
        for (int attempt = 0; attempt < 200; attempt++)
        {
            int chunks = 0;
            CpuThreads.For(1000, (lo, hi) => Interlocked.Increment(ref chunks));
            if (chunks > 1) return true;
            Thread.Sleep(1);
        }
        return false;
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
            // A scope disposed twice leaves once: the outer scope still holds.
            var inner = CpuThreads.Serial();
            inner.Dispose();
            inner.Dispose();
            Assert.Equal(1, CpuThreads.Count);
            // The dispatcher's workers cannot be replaced from inside.
            Assert.Throws<InvalidOperationException>(() => CpuThreads.Count = 3);
        }
        Assert.Equal(1, chunks);
        // The scope ended: the count is back and a For splits again.
        Assert.Equal(2, CpuThreads.Count);
        Assert.True(ForSplits(), "a For did not split after the serial scope ended");

        // Serial(false) changes nothing; an exception leaves the scope too.
        using (CpuThreads.Serial(false)) Assert.Equal(2, CpuThreads.Count);
        Assert.Throws<InvalidOperationException>((Action)(() =>
        {
            using (CpuThreads.Serial()) throw new InvalidOperationException("inside");
        }));
        Assert.Equal(2, CpuThreads.Count);
        Assert.True(ForSplits(), "a For did not split after a serial scope left by an exception");
    }

    [Fact]
    public void Setting_the_count_inside_a_For_body_throws()
    {
        using var threadCount = CpuThreads.Scoped(2);
        var errors = new System.Collections.Concurrent.ConcurrentBag<Exception>();
        CpuThreads.For(2, (lo, hi) =>
        {
            try { CpuThreads.Count = 1; }
            catch (Exception e) { errors.Add(e); }
        });
        Assert.NotEmpty(errors);
        Assert.All(errors, e => Assert.IsType<InvalidOperationException>(e));
        Assert.Equal(2, CpuThreads.Count);
    }

    [Fact]
    public void Tuning_variables_take_integers_in_range_and_fall_back_with_one_warning()
    {
        var warnings = new List<string>();
        void Warn(string name, string line) => warnings.Add(line);
        Assert.Equal(100, TuningVariable.Parse("PARGS_X", null, 100, 0, 1000, Warn));
        Assert.Equal(100, TuningVariable.Parse("PARGS_X", " ", 100, 0, 1000, Warn));
        Assert.Equal(250, TuningVariable.Parse("PARGS_X", "250", 100, 0, 1000, Warn));
        Assert.Empty(warnings);
        Assert.Equal(100, TuningVariable.Parse("PARGS_X", "fast", 100, 0, 1000, Warn));
        Assert.Equal(100, TuningVariable.Parse("PARGS_X", "99999999999999999999", 100, 0, 1000, Warn)); // beyond long
        Assert.Equal(1000, TuningVariable.Parse("PARGS_X", "5000", 100, 0, 1000, Warn));
        Assert.Equal(0, TuningVariable.Parse("PARGS_X", "-1", 100, 0, 1000, Warn));
        Assert.Equal(4, warnings.Count);
        Assert.All(warnings, w => Assert.Contains("PARGS_X", w));
        // A spin bound too large for us · Frequency is clamped, not wrapped.
        long spin = CpuThreads.SpinMicroseconds;
        try
        {
            CpuThreads.SpinMicroseconds = long.MaxValue;
            Assert.InRange(CpuThreads.SpinMicroseconds, 1, 1_000_000);
        }
        finally { CpuThreads.SpinMicroseconds = spin; }
    }

    [Fact]
    public void Thread_count_must_be_positive()
        => Assert.Throws<PargsException>(() => CpuThreads.Count = 0);
}
