using Pargs.Server;

namespace Pargs.Tests.Server;

/// <summary>
/// When Kestrel runs a request on the thread that received it: by default (that thread is a thread-pool thread), never
/// when .NET's socket completions run inline on the epoll thread (one slow handler would then stall every connection),
/// and not with PARGS_KESTREL_INLINE=0 (the A/B switch).
/// </summary>
public class InlineSchedulingTests
{
    static Func<string, string?> Environment(params (string Name, string Value)[] set)
        => name => set.FirstOrDefault(v => v.Name == name).Value;

    [Fact]
    public void Inline_by_default()
        => Assert.True(PargsServer.InlineScheduling(Environment()));

    [Fact]
    public void Not_inline_when_socket_completions_run_on_the_epoll_thread()
        => Assert.False(PargsServer.InlineScheduling(Environment(("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1"))));

    [Fact]
    public void Not_inline_when_switched_off()
    {
        Assert.False(PargsServer.InlineScheduling(Environment(("PARGS_KESTREL_INLINE", "0"))));
        Assert.True(PargsServer.InlineScheduling(Environment(("PARGS_KESTREL_INLINE", "1"), ("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "0"))));
    }
}
