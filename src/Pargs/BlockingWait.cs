namespace Pargs;

/// <summary>
/// Blocking on a task from a thread that must block (a decoder's worker, a synchronous decoding loop over remote
/// steps). Task.Wait and Task.WaitAll spin before they block; on 2 cores that spinning steals the core the awaited work
/// (the server's worker, the answers' I/O threads) needs — measured as a sixth to a third of a remote steering run's
/// CPU. This waits on the task's kernel event instead.
/// </summary>
public static class BlockingWait
{
    /// <summary>Returns once <paramref name="task"/> has ended (it may have faulted or been cancelled: the caller reads how).</summary>
    public static void Until(Task task)
    {
        if (!task.IsCompleted) ((IAsyncResult)task).AsyncWaitHandle.WaitOne();
    }
}
