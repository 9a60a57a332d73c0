using TorchSharp;
using static TorchSharp.torch;

namespace Pargs.Models.Encoders;

/// <summary>
/// A module that only names its children, so parameters get Hugging Face's nested names
/// (<c>attention.self.query.weight</c>) without a class per level of nesting.
/// </summary>
public class ModuleScope(string name) : nn.Module(name)
{
    public T Add<T>(string child, T module) where T : nn.Module
    {
        register_module(child, module);
        return module;
    }
}
