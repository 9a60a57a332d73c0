using System.Text;
using System.Text.Json;
using Pargs.Engine.Remote;

namespace Pargs.Tests.Remote;

/// <summary>
/// <see cref="RemoteHttp.Begin"/>'s two transports — its own blocking HTTP/1.1 connections (plain http) and HttpClient
/// (https, a proxy, PARGS_REMOTE_SOCKETS=0) — read the same answers the same way: the HTTP/1.1 shapes a server may write
/// (RFC 9112: Content-Length, chunked with extensions and trailers, an answer ended by closing, interim 1xx answers),
/// the bounds on what is read, retries, timeouts, the request bound, and idle connections a server closes.
/// </summary>
public sealed class RemoteHttpTransportTests
{
    static RemoteHttp Http(bool overSockets, int concurrency = 4, int retries = 0, double timeoutSeconds = 10, string? apiKey = null)
        => new(concurrency, TimeSpan.FromSeconds(timeoutSeconds), retries, TimeSpan.FromMilliseconds(1), apiKey, overSockets);

    static string Ask(RemoteHttp http, Uri url, string body = "{}")
    {
        using var doc = http.Begin(HttpMethod.Post, url, Encoding.UTF8.GetBytes(body)).Wait();
        return doc.RootElement.GetRawText();
    }

    static RawHttpServer.Answer Keep(byte[] bytes) => new(bytes);

    [Fact]
    public void Plain_http_goes_over_its_own_connections_and_https_over_httpclient()
    {
        using var sockets = Http(overSockets: true);
        using var client = Http(overSockets: false);
        Assert.True(sockets.OverSockets(new Uri("http://127.0.0.1:8000/v1/completions")));
        Assert.False(sockets.OverSockets(new Uri("https://127.0.0.1:8000/v1/completions")));
        Assert.False(client.OverSockets(new Uri("http://127.0.0.1:8000/v1/completions")));
        Assert.Equal("pargs' own HTTP/1.1 connections", sockets.TransportFor(new Uri("http://127.0.0.1:8000/v1/completions")));
        Assert.Equal("HttpClient (https)", sockets.TransportFor(new Uri("https://127.0.0.1:8000/v1/completions")));
        Assert.Equal("HttpClient (PARGS_REMOTE_SOCKETS=0)", client.TransportFor(new Uri("http://127.0.0.1:8000/v1/completions")));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Keep_alive_connections_carry_one_request_after_another(bool overSockets)
    {
        using var server = new RawHttpServer((n, _, body) => Keep(RawHttpServer.Json(200, $"{{\"n\":{n},\"echo\":{body}}}")));
        using var http = Http(overSockets);
        for (int i = 0; i < 5; i++)
            Assert.Equal($"{{\"n\":{i},\"echo\":{{\"i\":{i}}}}}", Ask(http, new Uri(server.Url, "v1/completions"), $"{{\"i\":{i}}}"));
        Assert.Equal(1, server.Connections);
        Assert.Equal(5, http.Requests);
        var head = server.Heads[0];
        Assert.StartsWith("POST /v1/completions HTTP/1.1\r\n", head);
        Assert.Contains($"Host: {server.Url.Authority}\r\n", head);
        Assert.Contains("Content-Type: application/json", head);
        Assert.Contains("Content-Length: 7\r\n", head);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_call_names_where_it_went(bool overSockets)
    {
        // Errors about an answer's contents (a reward model's wrong shape) name the URL the call carries, on either path.
        using var server = new RawHttpServer((_, _, _) => Keep(RawHttpServer.Json(200, "{}")));
        using var http = Http(overSockets);
        var url = new Uri(server.Url, "v1/rewards");
        var call = http.Begin(HttpMethod.Post, url, Encoding.UTF8.GetBytes("{}"));
        Assert.Equal(url, call.Url);
        call.Wait().Dispose();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void The_api_key_is_sent_as_a_bearer_token(bool overSockets)
    {
        using var server = new RawHttpServer((_, _, _) => Keep(RawHttpServer.Json(200, "{}")));
        using var http = Http(overSockets, apiKey: "sk-test");
        Ask(http, server.Url);
        Assert.Contains("Authorization: Bearer sk-test\r\n", server.Heads[0]);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_chunked_answer_with_extensions_and_trailers_is_read_whole_and_the_connection_kept(bool overSockets)
    {
        const string json = "{\"choices\":[{\"text\":\"hello, chunked world\"}]}";
        var chunked = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            + $"{10:x}\r\n{json[..10]}\r\n" + $"{json.Length - 10:X};name=value\r\n{json[10..]}\r\n" + "0\r\nX-Trailer: yes\r\n\r\n";
        using var server = new RawHttpServer((_, _, _) => Keep(Encoding.ASCII.GetBytes(chunked)));
        using var http = Http(overSockets);
        Assert.Equal(json, Ask(http, server.Url));
        Assert.Equal(json, Ask(http, server.Url));
        Assert.Equal(1, server.Connections);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void An_answer_ended_by_closing_the_connection_is_read_and_the_connection_not_reused(bool overSockets)
    {
        using var server = new RawHttpServer((n, _, _) => new(Encoding.ASCII.GetBytes($"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{{\"n\":{n}}}"), Close: true));
        using var http = Http(overSockets);
        Assert.Equal("{\"n\":0}", Ask(http, server.Url));
        Assert.Equal("{\"n\":1}", Ask(http, server.Url));
        Assert.Equal(2, server.Connections);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void An_interim_100_continue_is_skipped(bool overSockets)
    {
        using var server = new RawHttpServer((_, _, _) => Keep([.. Encoding.ASCII.GetBytes("HTTP/1.1 100 Continue\r\n\r\n"), .. RawHttpServer.Json(200, "{\"ok\":true}")]));
        using var http = Http(overSockets);
        Assert.Equal("{\"ok\":true}", Ask(http, server.Url));
    }

    [Theory]
    [InlineData(true, "length")]
    [InlineData(true, "chunked")]
    [InlineData(true, "headers")]
    [InlineData(false, "length")]
    [InlineData(false, "chunked")]
    [InlineData(false, "headers")]
    public void An_answer_beyond_the_bounds_fails_at_once_naming_the_url(bool overSockets, string how)
    {
        byte[] answer = how switch
        {
            "length" => Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {RemoteHttp.MaxAnswerBytes + 1}\r\n\r\n{{"),
            "chunked" => Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                + string.Concat(Enumerable.Repeat($"{1 << 20:x}\r\n{new string('a', 1 << 20)}\r\n", 9)) + "0\r\n\r\n"),
            _ => Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nX-Big: {new string('a', 70_000)}\r\nContent-Length: 2\r\n\r\n{{}}"),
        };
        using var server = new RawHttpServer((_, _, _) => new(answer, Close: true));
        using var http = Http(overSockets, retries: 3);
        var error = Assert.Throws<PargsException>(() => Ask(http, server.Url));
        Assert.Contains(server.Url.ToString(), error.Message);
        Assert.Contains("larger than pargs reads of one", error.Message);
        Assert.Equal(1, server.Requests); // not retried
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void An_answer_that_is_not_http_is_retried_then_fails_naming_the_url(bool overSockets)
    {
        using var server = new RawHttpServer((_, _, _) => new(Encoding.ASCII.GetBytes("SSH-2.0-OpenSSH_9.6\r\n\r\n"), Close: true));
        using var http = Http(overSockets, retries: 2);
        var error = Assert.Throws<PargsException>(() => Ask(http, server.Url));
        Assert.Contains(server.Url.ToString(), error.Message);
        Assert.Contains("gave up after 3 attempts", error.Message);
        Assert.Equal(3, server.Requests);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_503_with_retry_after_is_retried_and_a_400_is_not(bool overSockets)
    {
        using var server = new RawHttpServer((n, _, _) => Keep(n switch
        {
            0 => RawHttpServer.Json(503, "{\"error\":{\"message\":\"busy\"}}", "Retry-After: 0\r\n"),
            1 => RawHttpServer.Json(200, "{\"ok\":1}"),
            _ => RawHttpServer.Json(400, "{\"error\":{\"message\":\"'logprobs' must be at most 20\",\"param\":\"logprobs\"}}"),
        }));
        using var http = Http(overSockets, retries: 3);
        Assert.Equal("{\"ok\":1}", Ask(http, server.Url));
        Assert.Equal(1, http.Retried);
        var error = Assert.Throws<PargsException>(() => Ask(http, server.Url));
        Assert.Contains("HTTP 400", error.Message);
        Assert.Contains("'logprobs' must be at most 20", error.Message);
        Assert.Equal("logprobs", Assert.IsType<RemoteStatusException>(error.InnerException).Param);
        Assert.Equal(3, server.Requests);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_server_that_never_answers_times_out_naming_the_timeout(bool overSockets)
    {
        using var server = new RawHttpServer((_, _, _) => new(null, Delay: TimeSpan.FromSeconds(30)));
        using var http = Http(overSockets, timeoutSeconds: 0.3);
        var error = Assert.Throws<PargsException>(() => Ask(http, server.Url));
        Assert.Contains("no answer within 0.3 s", error.Message);
    }

    [Fact]
    public void An_idle_connection_the_server_closed_is_replaced_without_a_retry()
    {
        // The server answers with keep-alive, then closes the connection behind the client's back (as uvicorn and llama.cpp
        // do after 5 s idle). The next request finds it closed and goes on a new connection: not a failure, not a retry.
        using var server = new RawHttpServer((n, _, _) => new(RawHttpServer.Json(200, $"{{\"n\":{n}}}"), Close: true));
        using var http = Http(overSockets: true);
        Assert.Equal("{\"n\":0}", Ask(http, server.Url));
        Thread.Sleep(50); // the close has arrived; the connection was used within the last second, so it is not polled
        Assert.Equal("{\"n\":1}", Ask(http, server.Url));
        Assert.Equal(2, server.Connections);
        Assert.Equal(0, http.Retried);
    }

    [Fact]
    public void A_thread_that_holds_every_request_slot_reads_its_own_answers_to_send_more()
    {
        // Concurrency 1: the first request takes the one slot; the later ones are sent when waited for. Waited in reverse,
        // the waiting thread must read its own first request to free the slot — never wait for a slot only it can free.
        using var server = new RawHttpServer((n, _, body) => Keep(RawHttpServer.Json(200, body)));
        using var http = Http(overSockets: true, concurrency: 1);
        var calls = Enumerable.Range(0, 3).Select(i => http.Begin(HttpMethod.Post, server.Url, Encoding.UTF8.GetBytes($"{{\"i\":{i}}}"))).ToArray();
        var wait = Task.Run(() => calls.Reverse().Select(c => { using var d = c.Wait(); return d.RootElement.GetProperty("i").GetInt32(); }).ToArray());
        Assert.True(wait.Wait(TimeSpan.FromSeconds(20)), "the calls deadlocked on their request slot");
        Assert.Equal([2, 1, 0], wait.Result);
        Assert.Equal(1, server.MostOpenAtOnce);
    }

    [Fact]
    public void Requests_in_flight_never_exceed_the_bound_across_threads()
    {
        using var server = new RawHttpServer((_, _, body) => new(RawHttpServer.Json(200, body), Delay: TimeSpan.FromMilliseconds(20)));
        using var http = Http(overSockets: true, concurrency: 3);
        var threads = Enumerable.Range(0, 4).Select(t => new Thread(() =>
        {
            for (int step = 0; step < 3; step++)
            {
                var calls = Enumerable.Range(0, 4).Select(i => http.Begin(HttpMethod.Post, server.Url, Encoding.UTF8.GetBytes($"{{\"i\":{i}}}"))).ToArray();
                for (int i = 0; i < calls.Length; i++)
                    using (var d = calls[i].Wait()) Assert.Equal(i, d.RootElement.GetProperty("i").GetInt32());
            }
        })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) Assert.True(t.Join(TimeSpan.FromSeconds(60)));
        Assert.Equal(48, server.Requests);
        Assert.InRange(server.MostOpenAtOnce, 1, 3);
    }

    [Fact]
    public void An_abandoned_call_frees_its_slot_and_its_connection_is_not_reused()
    {
        using var server = new RawHttpServer((_, _, body) => Keep(RawHttpServer.Json(200, body)));
        using var http = Http(overSockets: true, concurrency: 1);
        http.Begin(HttpMethod.Post, server.Url, Encoding.UTF8.GetBytes("{\"i\":0}")).Abandon();
        Assert.Equal("{\"i\":1}", Ask(http, server.Url, "{\"i\":1}")); // a slot was free; the answer read is this request's, not the abandoned one's
        Assert.Equal(2, server.Connections);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void An_answer_that_arrived_in_time_is_read_even_when_its_wait_starts_late(bool overSockets)
    {
        // A decoder reads its rows' answers in turn; one row's retry can hold the next one's read past its deadline.
        using var server = new RawHttpServer((_, _, body) => Keep(RawHttpServer.Json(200, body)));
        using var http = Http(overSockets, timeoutSeconds: 0.5);
        var call = http.Begin(HttpMethod.Post, server.Url, Encoding.UTF8.GetBytes("{\"late\":true}"));
        Thread.Sleep(800);
        using var doc = call.Wait();
        Assert.True(doc.RootElement.GetProperty("late").GetBoolean());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_folded_header_line_is_read_as_part_of_the_field_before_it(bool overSockets)
    {
        var answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json;\r\n charset=utf-8\r\nContent-Length: 2\r\n\r\n{}";
        using var server = new RawHttpServer((_, _, _) => Keep(Encoding.ASCII.GetBytes(answer)));
        using var http = Http(overSockets);
        Assert.Equal("{}", Ask(http, server.Url));
    }

    [Fact]
    public void An_answer_with_both_framings_is_read_as_chunked_and_its_connection_not_trusted_again()
    {
        var answer = "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
        using var server = new RawHttpServer((_, _, _) => Keep(Encoding.ASCII.GetBytes(answer)));
        using var http = Http(overSockets: true);
        Assert.Equal("{}", Ask(http, server.Url));
        Assert.Equal("{}", Ask(http, server.Url));
        Assert.Equal(2, server.Connections);
    }

    [Theory]
    [InlineData("http://127.0.0.1:8000/v1/completions", "127.0.0.1:8000")]
    [InlineData("http://localhost/v1/completions", "localhost")]
    [InlineData("http://[::1]:8080/", "[::1]:8080")]
    [InlineData("http://bücher.example:8080/v1", "xn--bcher-kva.example:8080")]
    public void The_host_field_is_what_dns_and_rfc_9112_spell(string url, string host)
        => Assert.Equal(host, RemoteHttp.HostHeader(new Uri(url)));

    [Fact]
    public void Retries_that_need_a_slot_other_threads_hold_never_hang()
    {
        // One slot, two threads, every third answer a 503: a retry (inside its call's read) needs the slot while the other
        // thread is sending or holds it — it must read that thread's answer ahead or wait for it, never wait for ever.
        using var server = new RawHttpServer((n, _, body) => Keep(n % 3 == 2
            ? RawHttpServer.Json(503, "{\"error\":{\"message\":\"busy\"}}", "Retry-After: 0\r\n")
            : RawHttpServer.Json(200, body)));
        using var http = Http(overSockets: true, concurrency: 1, retries: 6);
        var threads = Enumerable.Range(0, 2).Select(t => Task.Run(() =>
        {
            for (int i = 0; i < 15; i++)
            {
                var calls = Enumerable.Range(0, 2).Select(j => http.Begin(HttpMethod.Post, server.Url, Encoding.UTF8.GetBytes($"{{\"t\":{t},\"j\":{j}}}"))).ToArray();
                for (int j = 0; j < calls.Length; j++)
                    using (var d = calls[j].Wait()) Assert.Equal(j, d.RootElement.GetProperty("j").GetInt32());
            }
        })).ToArray();
        Assert.True(Task.WaitAll(threads, TimeSpan.FromSeconds(60)), "a retry waited for a slot for ever");
        Assert.True(http.Retried > 0);
    }
}
