import Foundation
import Testing

@testable import DVCKit

struct MetadataTests {
    @Test func dvcFileWithImport() throws {
        let text = """
            md5: 3ef3d8a2b0c1e5f1e1c41a7c7b2a8e7d
            frozen: true
            deps:
            - path: data/chat.jsonl
              repo:
                url: /srv/datasets
                rev_lock: 28a14a6f412b0000000000000000000000000000
            outs:
            - md5: e935876630d2a0164e3fe3594ccb1e6d
              size: 7516192768
              hash: md5
              path: chat.jsonl
            """
        let file = try DVCFile(path: "data/raw/chat.jsonl.dvc", data: Data(text.utf8))
        #expect(file.outs[0].path == "data/raw/chat.jsonl")
        #expect(file.outs[0].size == 7_516_192_768)  // over 32 bits
        #expect(file.importSource?.url == "/srv/datasets")
        #expect(file.importSource?.revLock == "28a14a6f412b0000000000000000000000000000")
    }

    @Test(arguments: ["../../etc/passwd", "/etc/passwd", "a/../../b", "C:/x"])
    func unsafeOutPathsAreRejected(path: String) {
        let text = "outs:\n- md5: acbd18db4cc2f85cedef654fccc4a4d8\n  path: \(path)\n"
        #expect(throws: DVCError.self) { try DVCFile(path: "models/x/model.gguf.dvc", data: Data(text.utf8)) }
    }

    @Test func yamlAliasBombIsRejected() {
        var text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...9 {
            text += "l\(level): &l\(level) [" + Array(repeating: level == 1 ? "*a" : "*l\(level - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        text += "outs: *l9\n"
        #expect {
            try DVCFile(path: "models/bomb/model.gguf.dvc", data: Data(text.utf8))
        } throws: { error in
            (error as? DVCError)?.kind == .tooLarge
        }
    }

    @Test func pipelineTemplatingForeachMatrixAndParams() throws {
        let yaml = """
            vars:
              - base: data
            stages:
              prep:
                foreach: [a, b]
                do:
                  cmd: python prep.py ${item}
                  deps:
                    - ${base}/${item}.csv
                  outs:
                    - out/${item}.csv
              train:
                matrix:
                  lr: [0.1, 0.01]
                  model: [small]
                cmd: python train.py --lr ${item.lr} --epochs ${train.epochs}
                wdir: sub
                params:
                  - train.epochs
                  - ../other.toml: [alpha]
                outs:
                  - model-${item.lr}.gguf:
                      cache: true
                      remote: s3
            artifacts:
              m:
                path: sub/model.gguf
                type: model
            """
        let params = "train:\n  epochs: 3\n"
        let pipeline = try PipelineFile(path: "dvc.yaml", data: Data(yaml.utf8)) { path in
            path == "params.yaml" ? Data(params.utf8) : nil
        }
        #expect(pipeline.stages.map(\.name) == ["prep@a", "prep@b", "train@0.1-small", "train@0.01-small"])
        #expect(pipeline.stages[0].cmd == "python prep.py a")
        #expect(pipeline.stages[1].deps == ["data/b.csv"])
        let train = pipeline.stages[2]
        #expect(train.cmd == "python train.py --lr 0.1 --epochs 3")
        #expect(train.outs == [OutDefinition(path: "sub/model-0.1.gguf", cache: true, remote: "s3", push: true)])
        #expect(train.params == [ParamReference(file: "sub/params.yaml", key: "train.epochs"), ParamReference(file: "other.toml", key: "alpha")])
        #expect(pipeline.artifacts.first?.type == "model")
    }

    /// `vars: ['']` (and `':key'`) once indexed an empty split and ended the process.
    @Test(arguments: ["''", "':train'", "[]"])
    func varsEntriesWithoutAFileAreMalformed(entry: String) {
        let yaml = "vars:\n  - \(entry)\nstages:\n  s:\n    cmd: echo\n"
        #expect {
            try PipelineFile(path: "dvc.yaml", data: Data(yaml.utf8)) { _ in nil }
        } throws: { error in
            (error as? DVCError)?.kind == .malformed
        }
    }

    @Test func lockFileKeepsScalarText() throws {
        let lock = """
            schema: '2.0'
            stages:
              train:
                cmd: python train.py
                deps:
                - path: data.csv
                  hash: md5
                  md5: acbd18db4cc2f85cedef654fccc4a4d8
                  size: 3
                params:
                  params.yaml:
                    lr: 1e-05
                    name: '007'
                outs:
                - path: model.gguf
                  hash: md5
                  md5: 37b51d194a7513e45b56f6524f2d51f2
                  size: 3
            """
        let file = try LockFile(path: "dvc.lock", data: Data(lock.utf8))
        let params = try #require(file.stages["train"]?.params["params.yaml"])
        #expect(params.map(\.value.yamlText) == ["1e-05", "'007'"])
        #expect(file.stages["train"]?.outs.first?.md5 == "37b51d194a7513e45b56f6524f2d51f2")
    }

    @Test func paramsInTOMLAndJSON() throws {
        let toml = try ParamsFile(
            path: "p.toml", data: Data("title = \"x\"\n[train]\nlr = 0.001\nlayers = [1,\n 2]\n[train.opt]\nname = 'adam'\n".utf8))
        #expect(toml.value(at: "train.lr")?.yamlText == "0.001")
        #expect(toml.value(at: "train.layers")?.yamlText == "[1, 2]")
        #expect(toml.value(at: "train.opt.name")?.string == "adam")
        let json = try ParamsFile(path: "p.json", data: Data(#"{"a": {"b": 2}}"#.utf8))
        #expect(json.value(at: "a.b")?.yamlText == "2")
    }

    @Test func configWithLocalOverride() throws {
        let config = "[core]\n    remote = storage\n['remote \"storage\"']\n    url = ../remote\n"
        let local = "['remote \"storage\"']\n    access_key_id = AKIA\n"
        let parsed = try DVCConfig(config: Data(config.utf8), local: Data(local.utf8))
        #expect(parsed.defaultRemote == "storage")
        #expect(parsed.remotes["storage"] == ["url": "../remote", "access_key_id": "AKIA"])
    }

    @Test func invalidYAMLIsAClearError() {
        #expect(throws: DVCError.self) { try LockFile(path: "dvc.lock", data: Data("stages: [unclosed".utf8)) }
    }
}
