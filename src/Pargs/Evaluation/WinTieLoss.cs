namespace Pargs.Evaluation;

/// <summary>Counts of paired comparisons of a candidate against a baseline, and their rates.</summary>
public sealed record WinTieLoss(int Wins, int Ties, int Losses)
{
    public int Total => Wins + Ties + Losses;
    public double WinRate => Rate(Wins);
    public double TieRate => Rate(Ties);
    public double LossRate => Rate(Losses);
    /// <summary>(wins + ties) / total, the ARGS/PARGS papers' headline "win-tie" rate.</summary>
    public double WinOrTieRate => Rate(Wins + Ties);

    private double Rate(int count) => Total == 0 ? double.NaN : (double)count / Total;
}
