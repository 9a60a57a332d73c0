using System.Runtime.ExceptionServices;
using System.Text.Json;

namespace Pargs.Engine.Remote;

/// <summary>
/// A request in flight (<see cref="RemoteHttp.Begin"/>): <see cref="Wait"/> blocks for its parsed answer — read on the
/// waiting thread over a <see cref="Http1Connection"/>, or <see cref="HttpClient"/>'s task — and is answered once; a
/// call nobody will wait for is <see cref="Abandon"/>ed (its connection closed, its slot freed, a failure observed).
/// </summary>
public sealed class RemoteCall
{
    readonly Task<JsonDocument>? task;
    readonly RemoteHttp? http;
    JsonDocument? answer;
    ExceptionDispatchInfo? failure;
    bool ended;

    internal RemoteCall(Task<JsonDocument> task, HttpMethod method, Uri url)
    {
        this.task = task;
        Method = method;
        Url = url;
    }

    internal RemoteCall(RemoteHttp http, HttpMethod method, Uri url, ReadOnlyMemory<byte>? body)
    {
        this.http = http;
        Method = method;
        Url = url;
        Body = body;
    }

    internal HttpMethod Method { get; }
    /// <summary>Where the request went (named in errors about its answer).</summary>
    public Uri Url { get; }
    internal ReadOnlyMemory<byte>? Body { get; }
    // The current attempt's state, kept by RemoteHttp (one thread at a time: the call's lock).
    internal Http1Connection? Connection { get; set; }
    internal Exception? SendFailure { get; set; }
    internal bool HoldsSlot { get; set; }
    internal bool Resent { get; set; }
    internal long Deadline { get; set; }

    /// <summary>The answer (the caller disposes it), or the request's failure (<see cref="PargsException"/> after the retries).</summary>
    public JsonDocument Wait()
    {
        if (task is not null)
        {
            BlockingWait.Until(task);
            return task.GetAwaiter().GetResult();
        }
        lock (this)
        {
            ReadLocked();
            failure?.Throw();
            var result = answer ?? throw new InvalidOperationException("this call's answer was already read or abandoned");
            answer = null; // handed over once
            return result;
        }
    }

    /// <summary>Reads the answer now and keeps it (or its failure) for <see cref="Wait"/>: frees the slot this call holds.</summary>
    internal void ReadAhead()
    {
        lock (this) ReadLocked();
    }

    void ReadLocked()
    {
        if (ended) return;
        ended = true;
        try { answer = http!.Read(this); }
        catch (Exception e) { failure = ExceptionDispatchInfo.Capture(e); }
    }

    /// <summary>Gives the call up unread: its connection (mid-answer) closed and its slot freed; a task's failure observed, its answer disposed.</summary>
    public void Abandon()
    {
        if (task is not null)
        {
            task.ContinueWith(t => { if (t.IsCompletedSuccessfully) t.Result.Dispose(); else _ = t.Exception; }, TaskContinuationOptions.ExecuteSynchronously);
            return;
        }
        lock (this)
        {
            if (!ended)
            {
                ended = true;
                http!.Settle(this);
            }
            answer?.Dispose();
            answer = null;
        }
    }
}
