using System.Collections.Generic;

namespace ChatServices.Grpc.Generator
{
    /// <summary>What the generator needs from one .proto file: its package, C# namespace, messages and services.</summary>
    internal sealed class ProtoFile
    {
        public string Path = "";
        public string FileName = "";
        public string Package = "";
        public string? CSharpNamespace;

        /// <summary>Fully qualified message names (without leading dot) → C# type path relative to the namespace
        /// (nested messages as <c>Outer.Types.Inner</c>).</summary>
        public readonly Dictionary<string, string> Messages = new Dictionary<string, string>();

        public readonly List<ProtoService> Services = new List<ProtoService>();

        public string Namespace => CSharpNamespace ?? Naming.PascalCase(Package, dotsStartWords: true);

        /// <summary>The class protoc's C# output puts the file descriptor in: <c>health.proto</c> → <c>HealthReflection</c>.</summary>
        public string ReflectionClass
        {
            get
            {
                var name = FileName;
                var slash = name.LastIndexOf('/');
                if (slash >= 0)
                {
                    name = name.Substring(slash + 1);
                }

                if (name.EndsWith(".proto"))
                {
                    name = name.Substring(0, name.Length - ".proto".Length);
                }

                return Naming.PascalCase(name, dotsStartWords: false) + "Reflection";
            }
        }
    }

    internal sealed class ProtoService
    {
        public string Name = "";
        public int Index;
        public readonly List<ProtoMethod> Methods = new List<ProtoMethod>();
        public readonly List<string> Comments = new List<string>();
    }

    internal sealed class ProtoMethod
    {
        public string Name = "";
        public string RequestType = "";
        public string ResponseType = "";
        public bool ClientStreaming;
        public bool ServerStreaming;
        public readonly List<string> Comments = new List<string>();

        public string Kind => ClientStreaming
            ? (ServerStreaming ? "DuplexStreaming" : "ClientStreaming")
            : (ServerStreaming ? "ServerStreaming" : "Unary");
    }

    internal static class Naming
    {
        /// <summary>protoc's C# rule (UnderscoresToCamelCase): drop '_' and capitalise the next letter; a letter after
        /// a digit is capitalised too; with <paramref name="dotsStartWords"/>, '.' is kept and starts a word.</summary>
        public static string PascalCase(string input, bool dotsStartWords)
        {
            var sb = new System.Text.StringBuilder(input.Length);
            var capNext = true;
            foreach (var c in input)
            {
                if (c == '_' || c == '-' || (c == '.' && !dotsStartWords))
                {
                    capNext = true;
                }
                else if (c == '.')
                {
                    sb.Append('.');
                    capNext = true;
                }
                else if (char.IsDigit(c))
                {
                    sb.Append(c);
                    capNext = true;
                }
                else if (char.IsLetter(c))
                {
                    sb.Append(capNext ? char.ToUpperInvariant(c) : c);
                    capNext = false;
                }
                else
                {
                    sb.Append(c);
                }
            }

            return sb.ToString();
        }
    }
}
