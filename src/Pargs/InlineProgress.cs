namespace Pargs;

/// <summary>
/// An <see cref="IProgress{T}"/> that calls its handler at once, on the reporting thread. (System.Progress posts
/// to the thread pool when there is no synchronisation context, so reports can arrive late and out of order.)
/// </summary>
public sealed class InlineProgress<T>(Action<T> handler) : IProgress<T>
{
    public void Report(T value) => handler(value);
}
