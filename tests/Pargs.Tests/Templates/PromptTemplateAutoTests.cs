using Pargs.Data;
using Pargs.Templates;

namespace Pargs.Tests.Templates;

/// <summary><c>--template auto</c>: the model's chat template when its folder has one, plain text otherwise.</summary>
public class PromptTemplateAutoTests
{
    static TempDir Qwen3Folder()
    {
        var dir = new TempDir();
        File.Copy(ChatTemplateGoldenTests.Qwen3Config, dir.File("tokenizer_config.json"));
        return dir;
    }

    [Fact]
    public void AutoUsesTheModelsChatTemplate()
    {
        using var dir = Qwen3Folder();
        // A file inside the model folder (as --model may name a checkpoint file) finds the same template.
        foreach (var modelPath in new[] { dir.Path, dir.File("model.safetensors") })
        {
            var template = PromptTemplate.FromName("auto", "--template", modelPath);
            Assert.Equal("auto", template.Name);
            Assert.NotNull(template.Chat);
            Assert.Equal("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", template.RenderPrompt("hi"));
        }
    }

    [Fact]
    public void PromptAndResponseSplitTheRenderedConversation()
    {
        using var dir = Qwen3Folder();
        var template = PromptTemplate.FromName("AUTO", "--template", dir.Path);
        ChatMessage[] prompt = [new(ChatMessage.System, "Be brief."), new(ChatMessage.User, "2+2?")];
        ChatMessage[] completion = [new(ChatMessage.Assistant, "4")];
        string promptText = template.RenderPrompt(prompt);
        Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n", promptText);
        string response = template.RenderResponse(prompt, completion);
        Assert.Equal("<think>\n\n</think>\n\n4<|im_end|>\n", response);
        Assert.Equal(template.RenderMessages([.. prompt, .. completion]), promptText + response);
        // Without its prompt a chat template cannot place a response; refused, naming the template.
        var error = Assert.Throws<PargsException>(() => template.RenderResponse(completion));
        Assert.Contains("tokenizer_config.json", error.Message);
        // Built-in templates split the same way as before.
        Assert.Equal(PromptTemplate.ChatMl.RenderResponse(completion), PromptTemplate.ChatMl.RenderResponse(prompt, completion));
    }

    [Fact]
    public void AutoIsPlainForABaseModelAndNeedsAModel()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("tokenizer_config.json"), """{"bos_token": "<s>"}""");
        Assert.Same(PromptTemplate.Plain, PromptTemplate.FromName("auto", "--template", dir.Path));
        using var empty = new TempDir();
        Assert.Same(PromptTemplate.Plain, PromptTemplate.FromName("auto", "--template", empty.Path));
        Assert.Contains("--template: 'auto' reads the model's chat template", Assert.Throws<PargsException>(() => PromptTemplate.FromName("auto", "--template")).Message);
        Assert.Contains("expected one of plain, hh, chatml, auto", Assert.Throws<PargsException>(() => PromptTemplate.FromName("llama", "--template")).Message);
    }
}
