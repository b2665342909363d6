using System;
using System.Collections.Generic;
using System.Text;

namespace ChatServices.Grpc.Generator
{
    /// <summary>
    /// A small reader of the .proto language: enough to find the package, <c>csharp_namespace</c>, message names
    /// (nested too) and services with their RPCs. Everything else (fields, options, enums, extensions) is skipped
    /// by brace matching. protoc has already validated the file, so the parser can trust its structure.
    /// </summary>
    internal static class ProtoParser
    {
        public static ProtoFile Parse(string path, string text)
        {
            var file = new ProtoFile { Path = path, FileName = path.Replace('\\', '/') };
            var tokens = Tokenize(text);
            var scope = new List<string>(); // enclosing message names, for nested message full names
            var kinds = new Stack<string>(); // what each open brace belongs to: "message", "service" or "other"
            ProtoService? service = null;
            for (var i = 0; i < tokens.Count; i++)
            {
                var t = tokens[i].Text;
                if (t == "package" && kinds.Count == 0)
                {
                    file.Package = tokens[++i].Text;
                }
                else if (t == "option" && kinds.Count == 0 && Peek(tokens, i + 1) == "csharp_namespace")
                {
                    file.CSharpNamespace = Unquote(tokens[i + 3].Text);
                    i += 3;
                }
                else if (t == "message" && Peek(tokens, i + 2) == "{" && (kinds.Count == 0 || kinds.Peek() == "message"))
                {
                    var name = tokens[i + 1].Text;
                    scope.Add(name);
                    var full = (file.Package.Length > 0 ? file.Package + "." : "") + string.Join(".", scope);
                    file.Messages[full] = string.Join(".Types.", scope);
                    kinds.Push("message");
                    i += 2;
                }
                else if (t == "service" && kinds.Count == 0 && Peek(tokens, i + 2) == "{")
                {
                    service = new ProtoService { Name = tokens[i + 1].Text, Index = file.Services.Count };
                    service.Comments.AddRange(tokens[i].Comments);
                    file.Services.Add(service);
                    kinds.Push("service");
                    i += 2;
                }
                else if (t == "rpc" && service is not null && kinds.Count == 1 && kinds.Peek() == "service")
                {
                    i = ParseRpc(tokens, i, service);
                }
                else if (t == "{")
                {
                    kinds.Push("other");
                }
                else if (t == "}")
                {
                    var kind = kinds.Pop();
                    if (kind == "message")
                    {
                        scope.RemoveAt(scope.Count - 1);
                    }
                    else if (kind == "service")
                    {
                        service = null;
                    }
                }
            }

            return file;
        }

        // rpc Name ( [stream] Req ) returns ( [stream] Resp ) ( ";" | "{" options "}" )
        private static int ParseRpc(List<Token> tokens, int i, ProtoService service)
        {
            var method = new ProtoMethod { Name = tokens[i + 1].Text };
            method.Comments.AddRange(tokens[i].Comments);
            i += 3; // past "("
            if (tokens[i].Text == "stream" && tokens[i + 1].Text != ")")
            {
                method.ClientStreaming = true;
                i++;
            }

            method.RequestType = tokens[i].Text;
            i += 2; // past ")"
            i += 2; // past "returns" "("
            if (tokens[i].Text == "stream" && tokens[i + 1].Text != ")")
            {
                method.ServerStreaming = true;
                i++;
            }

            method.ResponseType = tokens[i].Text;
            i++; // at ")"
            service.Methods.Add(method);
            if (Peek(tokens, i + 1) == "{")
            {
                // Skip the options block.
                var depth = 0;
                for (i++; i < tokens.Count; i++)
                {
                    if (tokens[i].Text == "{")
                    {
                        depth++;
                    }
                    else if (tokens[i].Text == "}" && --depth == 0)
                    {
                        break;
                    }
                }
            }

            return i;
        }

        private static string? Peek(List<Token> tokens, int i) => i < tokens.Count ? tokens[i].Text : null;

        private static string Unquote(string s) => s.Length >= 2 && (s[0] == '"' || s[0] == '\'') ? s.Substring(1, s.Length - 2) : s;

        private sealed class Token
        {
            public string Text = "";
            public List<string> Comments = new List<string>();
        }

        /// <summary>Identifiers (with dots), strings, numbers and single punctuation characters; line comments
        /// directly above a token are attached to it (they become XML docs).</summary>
        private static List<Token> Tokenize(string text)
        {
            var tokens = new List<Token>();
            var pending = new List<string>();
            var i = 0;
            while (i < text.Length)
            {
                var c = text[i];
                if (char.IsWhiteSpace(c))
                {
                    if (c == '\n' && i + 1 < text.Length)
                    {
                        // A blank line detaches the comments above it.
                        var j = i + 1;
                        while (j < text.Length && (text[j] == ' ' || text[j] == '\t' || text[j] == '\r'))
                        {
                            j++;
                        }

                        if (j < text.Length && text[j] == '\n')
                        {
                            pending.Clear();
                        }
                    }

                    i++;
                }
                else if (c == '/' && i + 1 < text.Length && text[i + 1] == '/')
                {
                    var end = text.IndexOf('\n', i);
                    if (end < 0)
                    {
                        end = text.Length;
                    }

                    pending.Add(text.Substring(i + 2, end - i - 2).Trim());
                    i = end;
                }
                else if (c == '/' && i + 1 < text.Length && text[i + 1] == '*')
                {
                    var end = text.IndexOf("*/", i + 2, StringComparison.Ordinal);
                    i = end < 0 ? text.Length : end + 2;
                }
                else if (c == '"' || c == '\'')
                {
                    var sb = new StringBuilder().Append(c);
                    i++;
                    while (i < text.Length && text[i] != c)
                    {
                        if (text[i] == '\\' && i + 1 < text.Length)
                        {
                            sb.Append(text[i++]);
                        }

                        sb.Append(text[i++]);
                    }

                    sb.Append(c);
                    i++;
                    tokens.Add(new Token { Text = sb.ToString() });
                    pending.Clear();
                }
                else if (char.IsLetterOrDigit(c) || c == '_' || c == '.')
                {
                    var start = i;
                    while (i < text.Length && (char.IsLetterOrDigit(text[i]) || text[i] == '_' || text[i] == '.'))
                    {
                        i++;
                    }

                    tokens.Add(new Token { Text = text.Substring(start, i - start), Comments = new List<string>(pending) });
                    pending.Clear();
                }
                else
                {
                    tokens.Add(new Token { Text = c.ToString() });
                    pending.Clear();
                    i++;
                }
            }

            return tokens;
        }
    }
}
