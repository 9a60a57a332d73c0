using System.CommandLine;

namespace Pargs.Cli.Commands;

/// <summary>Every `pargs` subcommand, in the order `pargs --help` lists them.</summary>
public static class CommandCatalog
{
    public static IEnumerable<Command> All()
    {
        yield return DemoCommand.Create();
        yield return GenerateCommand.Create();
        yield return InfoCommand.Create();
        yield return TrainRmCommand.Create();
        yield return EvalRmCommand.Create();
        yield return TrainDpoCommand.Create();
        yield return TrainPpoCommand.Create();
        yield return EvalCommand.Create();
        yield return MergeCommand.Create();
        yield return BenchCommand.Create();
        yield return ExperimentCommand.Create();
        yield return ServeCommand.Create();
        yield return ConvertCommand.Create();
        yield return ReferenceCheckpointCommand.Create();
    }
}
