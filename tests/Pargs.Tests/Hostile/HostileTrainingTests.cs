using Pargs.Rewards;
using Pargs.Tests.Models;
using Pargs.Tests.Rewards;
using Pargs.Training;

namespace Pargs.Tests.Hostile;

/// <summary>Damaged checkpoints on resume, two runs in one folder, a run that fails before writing (issue 13).</summary>
public class HostileTrainingTests
{
    static RewardTrainingOptions Options(string output, int steps, bool resume = false, double learningRate = 2e-3, int logEvery = 2) => new()
    {
        Objective = RewardObjective.Partial,
        Loop = new TrainingOptions
        {
            LearningRate = learningRate, BatchSize = 3, MaxSteps = steps, Seed = 17, LogEvery = logEvery,
            CheckpointEvery = 2, OutputDir = output, Resume = resume, Threads = 1,
        },
    };

    static TrainingResult Train(string output, int steps, bool resume = false, double learningRate = 2e-3, int logEvery = 2)
    {
        var model = RewardModel.Create(RewardTestData.TinyLlama(), seed: 21);
        TinyModels.Randomize(model, seed: 21);
        var train = RewardTestData.RandomPairs(8, vocab: 16, seed: 5);
        return new RewardTrainer(model, train, null, Options(output, steps, resume, learningRate, logEvery)).Train();
    }

    static string Refused(Action run) => Assert.Throws<PargsException>(run).Message;

    [Fact]
    public void Damaged_checkpoints_are_refused_on_resume_with_a_one_line_message()
    {
        using var temp = new TempDir();
        string run = temp.File("run");
        Train(run, steps: 4);
        string checkpoint = Path.Combine(run, "checkpoint-4");
        string state = Path.Combine(checkpoint, TrainingCheckpoints.StateFile);
        string optimizer = Path.Combine(checkpoint, TrainingCheckpoints.OptimizerFile);
        string goodState = File.ReadAllText(state);
        byte[] goodOptimizer = File.ReadAllBytes(optimizer);

        // A checkpoint claiming more steps than the run has.
        Assert.StartsWith($"{checkpoint}: the checkpoint is at step 4, but this run has only 2 steps", Refused(() => Train(run, steps: 2, resume: true)));

        File.WriteAllText(state, goodState.Replace("\"global_step\": 4", "\"global_step\": 1000"));
        Assert.Contains("global_step is 1000 but the folder is checkpoint-4", Refused(() => Train(run, steps: 4, resume: true)));
        File.WriteAllText(state, goodState.Replace("\"seed\": 17", "\"seed\": \"x\""));
        Assert.Equal($"{state}: $.seed: expected an integer, got \"x\"", Refused(() => Train(run, steps: 4, resume: true)));
        File.WriteAllText(state, "[]");
        Assert.Contains("expected an object", Refused(() => Train(run, steps: 4, resume: true)));
        File.WriteAllText(state, goodState);

        var random = new Random(13);
        int refusedTruncations = 0;
        for (int round = 0; round < 12; round++)
        {
            byte[] damaged = (byte[])goodOptimizer.Clone();
            if (round % 3 == 0) damaged = damaged[..random.Next(damaged.Length)];
            else for (int flips = 0; flips < 1 + round; flips++) damaged[random.Next(damaged.Length)] ^= (byte)(1 << random.Next(8));
            File.WriteAllBytes(optimizer, damaged);
            try { Train(run, steps: 6, resume: true); }
            catch (PargsException e)
            {
                Assert.StartsWith(optimizer, e.Message);
                if (round % 3 == 0) refusedTruncations++;
                Assert.All(e.Message, c => Assert.False(char.IsControl(c), $"control character in: {e.Message}"));
            }
            // Success is fine too (a flipped bit in a moment is still a float); anything else fails the test.
            foreach (var extra in Directory.GetDirectories(run).Where(d => !d.EndsWith("checkpoint-4"))) Directory.Delete(extra, true);
        }
        Assert.Equal(4, refusedTruncations); // a cut-off optimizer.bin is always refused
    }

    [Fact]
    public void A_second_run_into_a_locked_folder_is_refused_naming_the_first()
    {
        using var temp = new TempDir();
        string run = temp.File("run");
        Directory.CreateDirectory(run);
        // The other run, as a second process would hold it.
        using (var other = new FileStream(Path.Combine(run, TrainingOutputLock.LockFile), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
        {
            File.WriteAllText(Path.Combine(run, TrainingOutputLock.OwnerFile), "process 4242 on elsewhere: pargs train-rm\n");
            Assert.Equal($"{run}: another Pargs run is writing into this folder (process 4242 on elsewhere: pargs train-rm); wait for it to end or choose another output folder",
                Refused(() => Train(run, steps: 2)));
        }
        Train(run, steps: 2); // released: the folder is usable again
        Assert.True(File.Exists(Path.Combine(run, "checkpoint-2", TrainingCheckpoints.StateFile)));

        using (TrainingOutputLock.Acquire(run))
        using (TrainingOutputLock.Acquire(run)) // re-entrant within a process
            Assert.True(TrainingOutputLock.IsHeld(run));
        Assert.False(TrainingOutputLock.IsHeld(run));
    }

    [Fact]
    public void A_run_that_diverges_before_writing_leaves_no_folder()
    {
        using var temp = new TempDir();
        string run = temp.File("diverged");
        Assert.Contains("training diverged", Refused(() => Train(run, steps: 30, learningRate: 1e30, logEvery: 1000)));
        Assert.False(Directory.Exists(run), string.Join(", ", Directory.Exists(run) ? Directory.GetFileSystemEntries(run) : []));
    }
}
