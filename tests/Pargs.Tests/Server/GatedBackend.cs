using System.Runtime.CompilerServices;
using Pargs.Server;

namespace Pargs.Tests.Server;

/// <summary>
/// A backend whose requests send one delta and then wait for <see cref="Release"/>: lets a test hold requests
/// "running" for as long as it needs (admission, disconnects, shutdown) without depending on decoding speed.
/// </summary>
sealed class GatedBackend : IGenerationBackend
{
    readonly TaskCompletionSource gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public int Started;
    public int Cancelled;
    public readonly TaskCompletionSource FirstCancelled = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public IReadOnlyList<string> Methods { get; } = ["greedy"];
    public int QueueDepth => 0;
    public void Release() => gate.TrySetResult();
    public ValidatedRequest Validate(GenerationRequest request) => new(request, 3);

    public async IAsyncEnumerable<GenerationUpdate> GenerateAsync(ValidatedRequest request, [EnumeratorCancellation] CancellationToken cancellation)
    {
        Interlocked.Increment(ref Started);
        yield return new GenerationUpdate(0, "first");
        try
        {
            await gate.Task.WaitAsync(cancellation);
        }
        catch (OperationCanceledException)
        {
            Interlocked.Increment(ref Cancelled);
            FirstCancelled.TrySetResult();
            throw;
        }
        yield return new GenerationUpdate(0, " last", "stop", 2);
    }

    public Task<float[]> ScoreAsync(string rewardModel, IReadOnlyList<RewardInput> inputs, CancellationToken cancellation) => Task.FromResult(new float[inputs.Count]);
    public void Dispose() => Release();
}
