using Pargs.Decoding;
using Pargs.Decoding.Methods;
using Pargs.Engine.Remote;
using Pargs.Rewards.Remote;
using Pargs.Server;

namespace Pargs.Tests.Remote;

/// <summary>
/// The 15M shape end to end (issue 18's second model): `pargs serve` with bench serve's random stories15M-shaped LM and
/// RM, steered by a remote engine, gives token for token what the local engine gives on copies of the same weights, with
/// one LM request per row and step, and one RM request per row and step with the reward model remote too. The id
/// tokenizer refuses the free-text tokenizer probes, so the check probes it with its own ids' text.
/// </summary>
public sealed class RemoteEngine15MTests
{
    [Fact]
    public async Task Remote_pargs_on_the_15M_shape_equals_the_local_engine_with_one_request_per_row_and_step()
    {
        var served = ServeBenchmark.Random15M().Models;
        using var _ = served;
        var local = RemoteBenchmark.Random15M();
        var server = await PargsServer.StartAsync(served, new PargsServerOptions { Port = 0 });
        try
        {
            const int rows = 3, tokens = 5;
            var prompts = Enumerable.Range(0, rows).Select(local.Prompt).ToArray();
            var options = new DecodingOptions { Method = new PargsOptions { K = 4, W = 2 }, Seed = 3, MaxNewTokens = tokens, StopAtEos = false, BatchSize = rows };
            var expected = TextGenerator.Generate(local.Lm, local.Rm, prompts, options);

            using var engine = RemoteEngine.Connect(new RemoteLmOptions { Url = server.Url, Model = local.LmName, TopK = 4, Concurrency = rows }, local.Lm.Tokenizer!, local.Lm.Config.EosTokenId);
            Assert.Contains(engine.TokenizerChecks, c => c.Contains("probed with the text of its own ids"));
            Assert.Contains(engine.TokenizerChecks, c => c.Contains("probe strings tokenize identically"));
            var remote = TextGenerator.Generate(engine, local.Rm, prompts, options);
            Assert.Equal(expected.Select(r => r.TokenIds), remote.Select(r => r.TokenIds));
            Assert.Equal(rows * tokens, engine.Requests);

            using var engine2 = RemoteEngine.Connect(new RemoteLmOptions { Url = server.Url, Model = local.LmName, TopK = 4, Concurrency = rows }, local.Lm.Tokenizer!, local.Lm.Config.EosTokenId);
            using var remoteRm = new RemoteRewardModel(new RemoteRmOptions { Url = server.Url, Model = local.RmName, Concurrency = rows }, engine2.Info);
            var both = TextGenerator.Generate(engine2, remoteRm, prompts, options);
            Assert.All(both, r => Assert.Equal(tokens, r.TokenIds.Length));
            Assert.Equal(rows * tokens, engine2.Requests);
            Assert.Equal(rows * tokens, remoteRm.Requests);
        }
        finally
        {
            await server.DisposeAsync();
            local.Lm.Dispose();
        }
    }
}
