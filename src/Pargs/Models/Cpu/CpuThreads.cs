using System.Diagnostics;

namespace Pargs.Models.Cpu;

/// <summary>
/// The threads Pargs' own CPU kernels split work over (<see cref="LlamaDecodeKernel"/>, <see cref="CpuLinear"/>):
/// the caller plus <c>Count − 1</c> long-lived workers. WHY not Parallel.For or libtorch's OpenMP: a decoding
/// step is a few hundred small jobs of 10–300 µs each, and a decode matrix–vector product is bound by memory
/// bandwidth, which one core does not saturate on this class of machine. Handing a job to a worker that is
/// already spinning costs well under a microsecond; waking a pool thread costs tens of microseconds, which
/// is the size of the job (docs/benchmarks.md). Workers spin briefly between jobs and then sleep, so an idle
/// process does not burn a core.
/// <para>
/// One dispatcher at a time: if another thread is already using the workers (e.g. tests running in
/// parallel), the caller simply runs the whole range itself — correct, never blocked, never oversubscribed.
/// </para>
/// <para>
/// A posted chunk is run by whoever claims it first: the worker, or the caller once its own chunk is done. So a
/// worker that is asleep, or whose core the host has descheduled (a VM's vCPU, or libgomp's threads spinning on
/// it), costs the caller one chunk's work instead of a wait of unbounded length: on this 2-vCPU VM single 64-token
/// runs at 2 threads were measured taking up to 12× their median (docs/benchmarks.md).
/// </para>
/// </summary>
public static class CpuThreads
{
    static readonly object dispatchGate = new();
    static Worker[] workers = Array.Empty<Worker>();
    static int count = 1;

    /// <summary>
    /// Threads the kernels use, the caller included (1 = run on the caller only). Set by <c>--threads</c>. Reads 1 on a thread
    /// inside a <see cref="For"/> body (a part of a row-split forward) or a <see cref="Serial"/> scope, where a For runs inline;
    /// setting it there throws (the dispatcher would stop the workers its own For is waiting for).
    /// </summary>
    public static int Count
    {
        get => bodyDepth > 0 ? 1 : count;
        set
        {
            if (value < 1) throw new PargsException($"thread count must be at least 1, got {value}");
            if (bodyDepth > 0) throw new InvalidOperationException("CpuThreads.Count cannot change inside a For body or a Serial scope");
            lock (dispatchGate)
            {
                if (value == count) return;
                foreach (var w in workers) w.Stop();
                workers = Enumerable.Range(1, value - 1).Select(i => new Worker(i)).ToArray();
                count = value;
            }
        }
    }

    /// <summary>
    /// Sets <see cref="Count"/> until the returned scope is disposed, then puts the previous count back: a benchmark or
    /// test that compares thread counts leaves the process's setting as it found it (`using var _ = CpuThreads.Scoped(2);`).
    /// </summary>
    public static ThreadCountScope Scoped(int threads)
    {
        var scope = new ThreadCountScope(count); // the field: the getter reads 1 inside a Serial scope
        Count = threads;
        return scope;
    }

    /// <summary>The thread count to restore when a <see cref="Scoped"/> block ends.</summary>
    public readonly struct ThreadCountScope(int previous) : IDisposable
    {
        public void Dispose() => Count = previous;
    }

    /// <summary>
    /// Runs <paramref name="body"/>(lo, hi) over [0, <paramref name="n"/>) split into one contiguous chunk per
    /// thread, chunk starts aligned to <paramref name="align"/> (keeps vector loops on whole blocks). Returns when
    /// every chunk is done. A <see cref="For"/> inside <paramref name="body"/> runs its whole range on the thread that
    /// calls it (the workers are taken): a coarse split (a batch's rows in two halves) keeps its inner kernels serial.
    /// </summary>
    public static void For(int n, Action<int, int> body, int align = 1, int minPerThread = 1)
    {
        int threads = Math.Min(count, Math.Max(1, n / Math.Max(1, minPerThread)));
        // Inside a split's body (this thread's chunk, one it took over, a worker's job) or a Serial scope: this thread alone.
        // For the dispatcher this check is what keeps a nested call inline: the gate is re-entrant, so it would otherwise post
        // to a worker still running the outer job's chunk. Another thread's call fails TryEnter below and runs inline.
        if (threads <= 1 || bodyDepth > 0)
        {
            body(0, n);
            return;
        }
        if (Monitor.IsEntered(dispatchGate) || !Monitor.TryEnter(dispatchGate))
        {
            RunInside(body, 0, n);
            return;
        }
        try
        {
            var pool = workers;
            threads = Math.Min(threads, pool.Length + 1);
            int Bound(int i) => i == threads ? n : Math.Min(n, (int)((long)n * i / threads) / align * align);
            for (int i = 1; i < threads; i++) pool[i - 1].Post(body, Bound(i), Bound(i + 1));
            Exception? failure = null;
            try { RunInside(body, 0, Bound(1)); }
            catch (Exception e) { failure = e; }
            // Every worker is waited for, even after a failure: none may still be running when For returns.
            for (int i = 1; i < threads; i++)
            {
                try { pool[i - 1].Wait(); }
                catch (Exception e) { failure ??= e; }
            }
            if (failure is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        }
        finally
        {
            Monitor.Exit(dispatchGate);
        }
    }

    /// <summary>
    /// How long an idle worker spins for its next job before it sleeps (PARGS_WORKER_SPIN_US, microseconds; A/B runs of one
    /// build). WHY this short: the hand-offs inside a decoding step come microseconds apart, so a worker spinning a
    /// hundred microseconds catches every one of them, while a server's steps leave gaps of a fraction of a millisecond
    /// to milliseconds (sampling, HTTP) in which a spinning worker holds a core that Kestrel and the clients need. The
    /// old bound (20,000 spins: 5–7 ms on this VM) outlasted a whole 16-stream step, so at --threads 2 the worker never
    /// slept and the process used ~1.9 cores even for one stream (docs/benchmarks.md). Waking a sleeping worker costs
    /// the first hand-off of a burst ~10 µs, but the caller never waits for the wake-up: it runs a chunk the worker has not
    /// claimed yet itself, and waits only for a chunk the worker is already running.
    /// </summary>
    public static long SpinMicroseconds
    {
        get => spinTicks * 1_000_000 / Stopwatch.Frequency;
        set => spinTicks = Math.Clamp(value, 0, MaxSpinMicroseconds) * Stopwatch.Frequency / 1_000_000;
    }

    static long spinTicks = TuningVariable.Read("PARGS_WORKER_SPIN_US", DefaultSpinMicroseconds, 0, MaxSpinMicroseconds) * Stopwatch.Frequency / 1_000_000;

    /// <summary>The default of <see cref="SpinMicroseconds"/>.</summary>
    const long DefaultSpinMicroseconds = 100;

    /// <summary>A second: longer is a busy core, not a spin; and us · Frequency and now + spinTicks stay far from overflow.</summary>
    const long MaxSpinMicroseconds = 1_000_000;

    // How many For bodies (its own chunk, a chunk it took over, a worker's job, a nested For run inline) and Serial scopes
    // this thread is inside: above 0 a For runs inline and Count reads 1.
    [ThreadStatic] static int bodyDepth;

    /// <summary>
    /// Runs <paramref name="body"/> on this thread with <see cref="Count"/> reading 1. WHY: a product that asks Count
    /// whether to split cuts its outputs into chunks for the threads to claim (WeightProduct); inside a part of a row-split
    /// forward no other thread can claim them, and a 172-wide stories260K product cut into 16-column CpuGemm calls took
    /// ~30 % more CPU than one call (docs/benchmarks.md).
    /// </summary>
    static void RunInside(Action<int, int> body, int lo, int hi)
    {
        bodyDepth++;
        try { body(lo, hi); }
        finally { bodyDepth--; }
    }

    /// <summary>
    /// While the returned scope lives (and <paramref name="serial"/> is true) this thread computes alone: every
    /// <see cref="For"/> it calls runs inline and <see cref="Count"/> reads 1, as inside a split's body. WHY: a forward
    /// whose products are each a microsecond of work (stories260K's step of a dozen rows: ~40 hand-offs) loses more to
    /// hand-offs, waking the worker and 16-column product chunks than the second thread gives back (docs/benchmarks.md).
    /// </summary>
    public static SerialScope Serial(bool serial = true) => new(serial ? ++bodyDepth : 0);

    /// <summary>Ends a <see cref="Serial"/> block (<paramref name="depth"/>: the depth it entered, 0 = inactive).</summary>
    public readonly struct SerialScope(int depth) : IDisposable
    {
        /// <summary>Leaves the scope once: a second Dispose (of this scope or a copy of it) finds the depth moved on and does nothing.</summary>
        public void Dispose()
        {
            if (depth > 0 && bodyDepth == depth) bodyDepth--;
        }
    }

    /// <summary>One worker thread with a single job slot; posted/finished are job generations.</summary>
    sealed class Worker
    {
        // Spin checks between two reads of the clock (each check is Thread.SpinWait(8), a few hundred nanoseconds).
        const int SpinsPerClockRead = 16;
        readonly SemaphoreSlim wake = new(0);
        Action<int, int>? body;
        int lo, hi;
        volatile int posted, finished;
        int claimed; // the last job generation someone (worker or caller) took on: CAS from generation − 1
        volatile bool sleeping, stopping;
        int wakePending; // 1 while a Release is on its way: one per sleep, however many jobs are posted meanwhile
        Exception? failure;

        public Worker(int index)
        {
            new Thread(Loop) { IsBackground = true, Name = $"pargs-cpu-{index}" }.Start();
        }

        public void Post(Action<int, int> job, int from, int to)
        {
            body = job;
            lo = from;
            hi = to;
            posted = posted + 1; // volatile write publishes the fields above
            Interlocked.MemoryBarrier();
            // While the worker wakes, the caller may post and run several jobs itself: release once, not per job.
            if (sleeping && Interlocked.CompareExchange(ref wakePending, 1, 0) == 0) wake.Release();
        }

        /// <summary>Returns when the posted job is done: runs it on the caller if the worker has not claimed it yet.</summary>
        public void Wait()
        {
            int job = posted;
            if (Interlocked.CompareExchange(ref claimed, job, job - 1) == job - 1)
            {
                try { RunInside(body!, lo, hi); }
                finally { finished = job; }
                return;
            }
            var spin = new SpinWait();
            while (finished != job) spin.SpinOnce(sleep1Threshold: -1);
            if (failure is { } e)
            {
                failure = null;
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e);
            }
        }

        public void Stop()
        {
            stopping = true;
            posted = posted + 1;
            wake.Release();
        }

        void Loop()
        {
            int seen = 0;
            while (true)
            {
                int spins = 0;
                long spinUntil = Stopwatch.GetTimestamp() + spinTicks;
                while (posted == seen)
                {
                    if (++spins % SpinsPerClockRead != 0 || Stopwatch.GetTimestamp() < spinUntil) { Thread.SpinWait(8); continue; }
                    sleeping = true;
                    Interlocked.MemoryBarrier();
                    if (posted == seen) wake.Wait();
                    Volatile.Write(ref wakePending, 0);
                    sleeping = false;
                    spins = 0;
                    spinUntil = Stopwatch.GetTimestamp() + spinTicks;
                }
                seen = posted;
                // After reading posted: Stop writes stopping before posted, so a worker that sees Stop's posted sees
                // stopping too and cannot claim that generation as a job (the caller may have run the last real one).
                if (stopping) return;
                if (Interlocked.CompareExchange(ref claimed, seen, seen - 1) != seen - 1) continue; // the caller ran it
                try { RunInside(body!, lo, hi); }
                catch (Exception e) { failure = e; }
                finished = seen;
            }
        }
    }
}
