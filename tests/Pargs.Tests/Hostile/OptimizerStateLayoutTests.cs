using Pargs.Training;
using TorchSharp;

namespace Pargs.Tests.Hostile;

/// <summary>
/// optimizer.bin is checked against the optimizer's own layout before TorchSharp reads it: TorchSharp sizes arrays
/// from the file (a damaged tensor rank) before comparing them with the parameters.
/// </summary>
public class OptimizerStateLayoutTests
{
    static (TorchSharp.Modules.AdamW Optimizer, byte[] Saved, string Path) Stepped(TempDir temp)
    {
        var model = torch.nn.Linear(4, 3);
        var optimizer = new Pargs.Training.Optimizers.AdamW(model.parameters(), 1e-3, 0.9, 0.999, 1e-8, 0); // its step holds its Scalars
        using (var loss = model.forward(torch.ones(2, 4)).sum()) loss.backward();
        optimizer.step();
        string path = temp.File("optimizer.bin");
        optimizer.save_state_dict(path);
        return (optimizer, File.ReadAllBytes(path), path);
    }

    [Fact]
    public void A_saved_state_loads_into_a_fresh_optimizer_and_damaged_structure_is_named()
    {
        using var temp = new TempDir();
        var (_, saved, path) = Stepped(temp);
        var fresh = new Pargs.Training.Optimizers.AdamW(torch.nn.Linear(4, 3).parameters(), 1e-3, 0.9, 0.999, 1e-8, 0);
        TrainingCheckpoints.LoadOptimizerState(path, fresh); // moments and steps differ from the fresh optimizer's: fine

        // "AdamW" (6 bytes), group and state counts, 7 doubles... the weight's first moment: step (8 bytes), then
        // dtype, rank, dims. Find the rank byte of the first tensor header (dtype 6 = float32, rank 2, dims 3 4).
        int header = IndexOf(saved, [6, 2, 3, 4]);
        foreach (var (offset, value, expected) in new[] { (header + 1, (byte)0xFF, "tensor header"), (header + 2, (byte)7, "tensor header"), (1, (byte)'X', "optimizer type") })
        {
            var damaged = (byte[])saved.Clone();
            damaged[offset] = value;
            File.WriteAllBytes(path, damaged);
            string? problem = Pargs.Tests.Fuzzing.FuzzHarness.RunOne(() =>
            {
                var error = Assert.Throws<PargsException>(() => TrainingCheckpoints.LoadOptimizerState(path, fresh));
                Assert.Contains(expected, error.Message);
                Assert.StartsWith(path, error.Message);
            });
            Assert.Null(problem); // within the fuzzer's time and allocation bounds
        }

        var stepCount = (byte[])saved.Clone();
        BitConverter.GetBytes(-5L).CopyTo(stepCount, header - 8);
        File.WriteAllBytes(path, stepCount);
        Assert.Contains("step count is -5", Assert.Throws<PargsException>(() => TrainingCheckpoints.LoadOptimizerState(path, fresh)).Message);

        File.WriteAllBytes(path, saved[..^1]);
        Assert.Contains("bytes where this optimizer's state takes", Assert.Throws<PargsException>(() => TrainingCheckpoints.LoadOptimizerState(path, fresh)).Message);
    }

    static int IndexOf(byte[] bytes, byte[] pattern)
    {
        for (int i = 0; i + pattern.Length <= bytes.Length; i++)
            if (bytes.AsSpan(i, pattern.Length).SequenceEqual(pattern)) return i;
        throw new InvalidOperationException("pattern not found");
    }
}
