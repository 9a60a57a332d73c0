namespace Pargs.Training;

/// <summary>Averages the loss and metrics of the micro-batches since the last log line.</summary>
sealed class MetricWindow
{
    readonly Dictionary<string, (double Sum, int Count)> sums = new();

    public double LastLoss { get; private set; } = double.NaN;
    public double? LastAccuracy { get; private set; }

    public void Add(double loss, IReadOnlyDictionary<string, double> metrics)
    {
        LastLoss = loss;
        Accumulate("loss", loss);
        foreach (var (name, value) in metrics) Accumulate(name, value);
        if (metrics.TryGetValue("accuracy", out var accuracy)) LastAccuracy = accuracy;
    }

    public void AddGradNorm(double norm) => Accumulate("grad_norm", norm);

    void Accumulate(string name, double value)
    {
        var (sum, count) = sums.GetValueOrDefault(name);
        sums[name] = (sum + value, count + 1);
    }

    /// <summary>The averages plus step, epoch and learning rate, as one log record; starts a new window.</summary>
    public Dictionary<string, double> Drain(int step, double epoch, double learningRate)
    {
        var record = sums.ToDictionary(kv => kv.Key, kv => kv.Value.Sum / kv.Value.Count);
        record["learning_rate"] = learningRate;
        record["epoch"] = epoch;
        record["step"] = step;
        sums.Clear();
        return record;
    }
}
