namespace Pargs.Server;

/// <summary>
/// The bounded queue in front of the engine: at most <see cref="ServerLimits.MaxQueuedRequests"/> requests are
/// admitted (running or waiting); one more is refused at once (429 with Retry-After) rather than queued without end.
/// </summary>
public sealed class RequestAdmission(ServerLimits limits, ServerMetrics metrics)
{
    int admitted;
    readonly ServerMetrics metrics = metrics;

    public int Admitted => Volatile.Read(ref admitted);

    /// <summary>A ticket to dispose when the request ends, or null when the queue is full.</summary>
    public IDisposable? TryEnter()
    {
        if (Interlocked.Increment(ref admitted) > limits.MaxQueuedRequests)
        {
            Interlocked.Decrement(ref admitted);
            return null;
        }
        metrics.Started();
        return new Ticket(this);
    }

    sealed class Ticket(RequestAdmission owner) : IDisposable
    {
        int disposed;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref disposed, 1) != 0) return;
            Interlocked.Decrement(ref owner.admitted);
            owner.metrics.Finished();
        }
    }
}
