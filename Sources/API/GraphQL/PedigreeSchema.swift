/// The GraphQL schema in SDL. `schema.graphql` at the repository root is this text as
/// `printSchema` prints it; `SchemaFileTests` fails when the two differ.
public enum PedigreeSchema {
    public static let sdl = #"""
        """ISO-8601 date and time with offset, e.g. 2026-11-25T10:00:00+01:00"""
        scalar DateTime

        """64-bit integer; sizes never use the 32-bit Int"""
        scalar Long

        type Query {
          """A model by name, as declared on the default branch."""
          model(name: String!): Model

          """Every model declared on the default branch."""
          models: [Model!]!

          """A model revision by any revision spec: name@sha, name@branch, name@tag, name@v1.2.0, name#stage, name, or a bare SHA."""
          modelRevision(id: ID!): ModelRevision

          """The mirrored repository's state."""
          repository: RepositoryStatus!

          """Artifact pulls running now, with their progress."""
          transfers: [Transfer!]!

          """Models loaded for inference, with their slots and queues."""
          loadedModels: [LoadedModel!]!

          """A recorded inference by its id (InferencePayload.id)."""
          inference(id: ID!): Inference

          """Recorded inferences, newest first (a Relay connection; `after` is an endCursor)."""
          inferences(filter: InferenceFilter, first: Int = 20, after: String): InferenceConnection!

          """What changed between two revisions of one model (any specs; b is usually the newer): commits, datasets, parameters, code, stages, artifact."""
          compare(a: ID!, b: ID!): RevisionDiff!

          """Every model revision on the default branch whose pipeline read this data path (at this md5 when given), with the stage that read it."""
          dataset(path: String!, md5: String): [DatasetUse!]!

          """An evaluation by id, as the ledger keeps it (scores as stored, answers read back); null when absent."""
          evaluation(id: ID!): Evaluation

          """Evaluations, newest first (20 at most). A model's history: evaluations(model:) gives each scorer over its revisions."""
          evaluations(model: String, revision: ID, dataset: String, first: Int = 20): [Evaluation!]!

          """Two evaluations over one set compared item by item (b is usually the newer): each scorer's means and their difference, the items whose scores differ (regressions first) with both answers and the first token where they part, and the lineage diff of the two revisions."""
          compareEvaluations(a: ID!, b: ID!): EvaluationComparison!

          """A signed head of the ledger's Merkle tree: the one of this size, or the newest. Null while none is signed, or without receipts."""
          treeHead(size: Long): TreeHead

          """The RFC 9162 proof that the signed head of size `from` is a prefix of the one of size `to` (the ledger only grew between them). Null unless both are signed heads."""
          consistencyProof(from: Long!, to: Long!): ConsistencyProof
        }

        """A signed head of the ledger's Merkle tree (RFC 9162, SHA-256): leaf i is the record at position i + 1, its hash SHA-256(0x00 ‖ SHA-256(receipt statement)); kept after retention removes the record."""
        type TreeHead {
          """The number of leaves (positions 1 to size)."""
          size: Long!

          """The tree's root, hex."""
          rootHash: String!

          signedAt: DateTime!

          """A DSSE envelope (JSON, payload type application/vnd.pedigree.tree-head+json) of {rootHash, signer, size, time}, signed with a key at GET /receipt-keys."""
          envelope: String!
        }

        """An inference's place in a signed tree head: the audit path of RFC 9162 §2.1.3."""
        type InclusionProof {
          """The record's ledger position (leaf index + 1)."""
          position: Long!

          leafIndex: Long!

          """SHA-256(0x00 ‖ SHA-256(the receipt's statement)), hex."""
          leafHash: String!

          """The audit path, leaf to root, hex."""
          hashes: [String!]!

          treeHead: TreeHead!
        }

        """The RFC 9162 §2.1.4 proof that one signed head is a prefix of another."""
        type ConsistencyProof {
          from: TreeHead!
          to: TreeHead!

          """The proof's hashes, hex."""
          hashes: [String!]!
        }

        type EvaluationComparison {
          a: Evaluation!
          b: Evaluation!
          scores: [ScorerDelta!]!

          """The items whose scores differ (timings left out): REGRESSED first, then IMPROVED, then CHANGED; only one kind with change."""
          items(change: String): [EvaluationItemComparison!]!

          """Items answered in both whose scores are equal."""
          unchanged: Int!

          """Items answered (without error) in one evaluation only."""
          unmatched: Int!

          """What changed between the two revisions; null when they are revisions of two models."""
          lineage: RevisionDiff
        }

        type ScorerDelta {
          scorer: String!
          a: Float
          b: Float

          """b − a; null when either has no mean."""
          delta: Float
        }

        type EvaluationItemComparison {
          id: ID!
          line: Int!

          """REGRESSED (a score fell, none rose), IMPROVED (one rose, none fell) or CHANGED (both, or only length differs)."""
          change: String!
          a: EvaluationItemResult!
          b: EvaluationItemResult!

          """Where the generated tokens first differ; null when they are equal or not kept as ids."""
          firstDifference: TokenDifference
        }

        type TokenDifference {
          """0-based index into the generated tokens."""
          index: Int!

          """Each side's token id there; null where that answer had ended."""
          a: Int
          b: Int
        }

        type DatasetUse {
          modelRevision: ModelRevision!

          """The stage of the revision's pipeline that read the data."""
          stage: String!
          md5: String!
        }

        type RevisionDiff {
          a: ModelRevision!
          b: ModelRevision!

          """Commits after a up to and including b on the first-parent path, newest first."""
          commits: [Commit!]!

          """Whether a is b or a first-parent ancestor of it (otherwise commits is empty)."""
          related: Boolean!

          """Source datasets added, removed or changed (md5 or size), each with both sides."""
          datasets: [DatasetChange!]!

          """Parameters whose locked value differs, or that exist on one side only."""
          parameters: [ParameterChange!]!

          """Git-tracked code dependencies whose md5 differs, or that exist on one side only."""
          code: [CodeChange!]!
          stagesAdded: [String!]!
          stagesRemoved: [String!]!

          """Whether the artifact's md5 differs (a.artifact and b.artifact have both sides)."""
          artifactChanged: Boolean!
        }

        type DatasetChange {
          path: String!

          """added, removed or changed."""
          change: String!
          before: DatasetRevision
          after: DatasetRevision
        }

        type ParameterChange {
          file: String!
          key: String!
          before: String
          after: String
        }

        type CodeChange {
          path: String!

          """added, removed or changed."""
          change: String!
          before: String
          after: String
        }

        type Mutation {
          """Fetch the Git remote now; new commits and tags are visible afterwards."""
          refresh: RepositoryStatus!

          """Fetch a revision's artifact from its DVC remote into the verified cache (nothing is downloaded when it is cached)."""
          pull(id: ID!): PullPayload!

          """Generate with a model revision (llama.cpp in-process); the answer carries the revision's full lineage."""
          infer(input: InferenceInput!): InferencePayload!

          """Load a revision's model now (fetching its artifact when needed)."""
          loadModel(id: ID!): LoadedModel!

          """Unload a revision's model if it is idle; false when it was not loaded."""
          unloadModel(id: ID!): Boolean!

          """Run a recorded inference again (same revision, weights, input and sampling) and compare the tokens; with `against`, on that revision instead."""
          replay(id: ID!, against: ID): ReplayPayload!

          """Replay the newest `sample` recorded inferences matching `filter` against another revision: a summary and one item each."""
          replayMany(filter: InferenceFilter, against: ID!, sample: Int = 10): ReplayBatch!

          """Evaluate a model revision on an evaluation set of the repository (a JSONL file tracked by Git or DVC): every item answered through the request path, recorded (request id eval-<id>#<item id>) and scored. A run of the same evaluation (revision, set, sampling) reuses the answers an earlier run recorded."""
          evaluate(input: EvaluateInput!): Evaluation!

          """Stop an evaluation running on this server: items under way finish, no new one starts; it is stored as CANCELLED and a rerun resumes it. False when none by that id runs here."""
          cancelEvaluation(id: ID!): Boolean!

          """Register a version and/or assign a stage to the revision an evaluation ran on (admin): only when the evaluation is the model's, completed with no failed item, and reaches every threshold; otherwise FAILED_PRECONDITION and no tag. The tags are the ones gto register and gto assign write, pushed to the repository's Git remote; the registry shows them at once."""
          promote(input: PromoteInput!): Promotion!

          """Sign a head of the ledger's Merkle tree now (admin; the server also signs one every tree-head-interval while the ledger grows, and on shutdown). Returns the newest head; null while the ledger is empty."""
          signTreeHead: TreeHead
        }

        input PromoteInput {
          model: String!

          """A version to register at the evaluated commit (vX.Y.Z)."""
          version: String

          """A stage to assign to the evaluated commit's version."""
          stage: String
          requireEvaluation: EvaluationGateInput!
        }

        input EvaluationGateInput {
          """The evaluation's id."""
          id: ID!

          """At least one: each scorer's mean must be at least min."""
          failUnder: [ScoreThresholdInput!]!
        }

        input ScoreThresholdInput {
          scorer: String!
          min: Float!
        }

        type Promotion {
          """The tags written and pushed, in order."""
          tags: [String!]!
          modelRevision: ModelRevision!
          evaluation: Evaluation!

          """The model as the registry shows it now."""
          model: Model!
        }

        input EvaluateInput {
          """Any revision spec."""
          modelRevisionID: ID!

          """The set's path in the repository."""
          dataset: String!

          """Branch, tag or commit the set is read at; the default branch when omitted."""
          datasetRevision: String

          """Scorers (default exact): exact[:lower,collapse,punctuation], contains[:…], regex[:PATTERN], json, schema:{JSON Schema}, numeric[:TOLERANCE], f1, judge:SPEC (another revision of the repository grades each answer; its answers are recorded too), length, ttft, tps."""
          scorers: [String!]

          """Constrain every answer (a JSON Schema, any JSON object, or a grammar), as infer does."""
          constraint: ConstraintInput

          """What a judge:SPEC scorer's model is asked: {prompt}, {expected} and {answer} are replaced by the item's question, its acceptable answers and the answer to grade. Default: a question asking for yes or no."""
          judgeTemplate: String

          """Greedy with seed 0 unless given: an evaluation is reproducible."""
          sampling: SamplingInput

          """Items answered at once, 1 to 16 (default 4)."""
          concurrency: Int

          """Ask every item again under an id of its own."""
          fresh: Boolean
        }

        type Evaluation {
          id: ID!
          modelRevision: ModelRevision!
          dataset: EvaluationDataset!

          """RUNNING, COMPLETED, CANCELLED or FAILED."""
          status: String!
          createdAt: DateTime!

          """The sampling every item got, as JSON."""
          sampling: String!

          """Items in the set; done: answered so far (with failed among them)."""
          total: Int!
          done: Int!
          failed: Int!

          """Live progress while it runs on this server; null otherwise."""
          progress: EvaluationProgress

          """Items answered by an earlier run of the same evaluation (read back from the ledger)."""
          reused: Int!
          scores: [ScorerSummary!]!
          items: [EvaluationItemResult!]!

          """Lines of the set that are not items, with why."""
          badLines: [EvaluationBadLine!]!
        }

        type EvaluationDataset {
          path: String!
          commit: String!

          """md5 of the set's bytes."""
          md5: String!
        }

        type ScorerSummary {
          scorer: String!

          """The mean over the items scored; null when none was."""
          mean: Float
          count: Int!
          failures: Int!
        }

        type EvaluationItemResult {
          id: ID!
          line: Int!

          """The ledger id of its answer."""
          inferenceID: ID
          output: String
          finishReason: String
          error: String
          scores: [ItemScore!]!
        }

        type ItemScore {
          scorer: String!

          """Null where the scorer does not apply (no expected answer) or the item failed."""
          value: Float
        }

        type EvaluationBadLine {
          line: Int!
          reason: String!
        }

        input InferenceFilter {
          """Model name."""
          model: String

          """Canonical revision id (name@sha) or any spec resolving to one."""
          revision: ID
          since: DateTime
          until: DateTime
          caller: String
        }

        type InferenceConnection {
          edges: [InferenceEdge!]!
          pageInfo: PageInfo!
        }

        type InferenceEdge {
          cursor: String!
          node: Inference!
        }

        type PageInfo {
          hasNextPage: Boolean!
          endCursor: String
        }

        type Inference {
          id: ID!
          createdAt: DateTime!
          modelRevision: ModelRevision!

          """Its signed receipt: a DSSE envelope (JSON) of an in-toto Statement whose subjects are the SHA-256 of the answer's text and of its token ids, and whose predicate is what made it (revision, commit, weights md5, lineage, input digest, sampling and seed, engine, time, caller key id). Verify with the keys at GET /receipt-keys. Null for records made before receipts."""
          receipt: String

          """Its place in the newest signed tree head of the ledger (with the receipt, proof that the record was in the ledger when the head was signed). Null until a signed head holds it."""
          inclusionProof: InclusionProof

          """The prompt, or the chat messages as JSON; a sha256: digest under the privacy setting."""
          prompt: String!
          result: String!
          seed: Long!

          """completed, cancelled or failed."""
          status: String!
          error: String
          finishReason: String!
          caller: String
          artifactMD5: String!

          """The weights' SHA-256 as loaded (null when they never loaded, and in older records)."""
          artifactSHA256: String

          """The weights' signature check as recorded with the answer (null like artifactSHA256)."""
          signature: WeightsSignature

          """The engine facts as recorded: JSON (see engineFacts); llama.cpp's system information for records made before they were recorded."""
          engine: String!

          """What decides whether this answer can be reproduced bit for bit; null for records made before they were recorded."""
          engineFacts: EngineFacts

          """The full sampling as JSON."""
          sampling: String!

          """Datasets, parameters and code of the revision as JSON, as recorded."""
          lineage: String!
          usage: Usage!

          """The W3C trace id of the request (when tracing is on): the trace of this answer."""
          traceID: String
        }

        type ReplayPayload {
          original: Inference!
          replay: InferencePayload!
          identical: Boolean!

          """Index of the first generated token that differs; null when identical."""
          firstDifference: Int

          """Whether the replay ran on an engine with the original's facts (all but the prefix cache); null when the original recorded none."""
          sameEngine: Boolean

          """Whether the same answer was to be expected: both ran on engines with the same facts, and the original's kernels were measured batch-invariant (engineFacts.batchInvariant). Never for an external backend (its engine is not known)."""
          guaranteed: Boolean!
        }

        """The engine facts that decide whether an answer is reproduced bit for bit."""
        type EngineFacts {
          """llama.cpp's ggml version and commit."""
          build: String!

          """Pedigree's own version and build commit (pedigree 0.25.0 (commit)); null in records made before it was recorded."""
          server: String

          """The CPU features llama.cpp uses."""
          cpu: String!
          threads: Int!
          batch: Int!
          ubatch: Int!

          """Prompt chunk size (invariant mode; 0 in the mixed mode)."""
          prefillChunk: Int!
          flashAttention: Boolean!

          """invariant or mixed."""
          mode: String!
          prefixCache: Boolean!

          """The inference worker (its URL) that ran it, when the gateway sent it to one; null in one process."""
          worker: String

          """The external OpenAI-compatible backend (its configured name) that ran it; its other facts are unknown (empty)."""
          external: String

          """Whether ggml's tiled K-quant GEMM was on (off in the invariant mode); null for records made before it was recorded."""
          tiledMatmul: Boolean

          """The GPUs the engine could offload to: ggml name, model and driver (empty on a CPU engine)."""
          devices: [String!]

          """Whether the KV cache and attention went to the GPUs with their layers; null without GPUs."""
          offloadKV: Boolean

          """Layers of the model offloaded to the GPUs (0 on the CPU)."""
          gpuLayers: Int

          """Whether the model's weights were repacked for the CPU's GEMM kernels."""
          repack: Boolean

          """Whether the answer's tokens do not depend on what shared its llama.cpp calls: the invariant mode on kernels measured invariant for every weight type of the model, on the CPU. A replay is guaranteed only where this holds."""
          batchInvariant: Boolean
        }

        type ReplayBatch {
          identical: Int!
          differing: Int!
          failed: Int!
          items: [ReplayItem!]!
        }

        type ReplayItem {
          """The recorded inference's id."""
          id: ID!

          """Null when the replay failed (see error)."""
          identical: Boolean
          firstDifference: Int
          error: String
          replay: ReplayPayload
        }

        type Subscription {
          """Generate with streaming: one event per piece of text, then one event with the payload. Over SSE (POST /graphql, Accept: text/event-stream)."""
          inferStream(input: InferenceInput!): InferenceEvent!

          """An evaluation's progress as items are answered, ending when it finishes (at once when it does not run here)."""
          evaluationProgress(id: ID!): EvaluationProgress!
        }

        type EvaluationProgress {
          id: ID!
          total: Int!
          done: Int!
          failed: Int!

          """Tokens generated by this run."""
          tokens: Int!

          """At the pace so far; null before an item was answered."""
          secondsLeft: Float
          cancelled: Boolean!

          """True on the last event."""
          finished: Boolean!
        }

        type InferenceEvent {
          """Text generated since the previous event (UTF-8 safe)."""
          token: String

          """Set on the last event only."""
          payload: InferencePayload
        }

        input InferenceInput {
          """Any revision spec."""
          modelRevisionID: ID!

          """Raw text completion."""
          prompt: String

          """A chat, rendered with the model's chat template."""
          messages: [ChatMessageInput!]
          sampling: SamplingInput

          """What the answer must match (enforced token by token by llama.cpp's grammar sampler; recorded, replayed)."""
          constraint: ConstraintInput

          """Functions the model may call in a chat (its Jinja chat template must describe tools); recorded, replayed."""
          tools: [ToolInput!]

          """auto (default), none, required, or the name of the one function to call."""
          toolChoice: String

          """Whether one answer may hold several calls (default true)."""
          parallelToolCalls: Boolean
        }

        input ToolInput {
          name: String!
          description: String

          """Its parameters' JSON Schema as JSON text (default: no parameters). The call's arguments are generated to match it."""
          parameters: String
        }

        input ToolCallInput {
          id: ID!
          name: String!

          """The arguments as a JSON object's text."""
          arguments: String!
        }

        input ConstraintInput {
          """json_object (any JSON object), json_schema (schema required) or grammar (GBNF with a rule named root)."""
          type: String!

          """A JSON Schema as JSON text. A keyword that cannot be enforced is refused by name."""
          schema: String
          name: String
          grammar: String
        }

        input LogitBiasInput {
          token: Int!

          """-100 to 100; -100 bans the token."""
          bias: Float!
        }

        input ChatMessageInput {
          """system, user, assistant or tool."""
          role: String!

          """Required, except in an assistant message that only calls tools."""
          content: String

          """The calls an assistant message made."""
          toolCalls: [ToolCallInput!]

          """The call a tool message answers."""
          toolCallID: ID
        }

        input SamplingInput {
          """0 is greedy. Default 0.8."""
          temperature: Float
          topK: Int
          topP: Float
          minP: Float
          repeatPenalty: Float

          """-2 to 2, subtracted once from every token the answer holds (OpenAI's presence_penalty)."""
          presencePenalty: Float

          """-2 to 2, subtracted once per time a token occurs in the answer (OpenAI's frequency_penalty)."""
          frequencyPenalty: Float
          logitBias: [LogitBiasInput!]

          """Report each token's log-probability and this many alternatives (0 to 20) in the payload's tokens."""
          logprobs: Int

          """Random when not given; the payload says which was used."""
          seed: Long
          maxTokens: Int
          stop: [String!]
        }

        type InferencePayload {
          id: ID!
          result: String!

          """Its signed receipt (as Inference.receipt), written with the record before this answer."""
          receipt: String

          """stop, length or cancelled."""
          finishReason: String!
          modelRevision: ModelRevision!
          usage: Usage!

          """The effective seed."""
          seed: Long!
          timings: Timings!

          """Each generated token with its log-probability and alternatives, when sampling.logprobs asked for them."""
          tokens: [TokenLogprob!]

          """With tools: the answer's text outside its calls (result holds all of it, markup included)."""
          content: String

          """With tools: the calls the answer made, read by the chat template family's parser."""
          toolCalls: [ToolCall!]
        }

        type ToolCall {
          id: ID!
          name: String!

          """The arguments as a JSON object's text, valid for the function's parameters."""
          arguments: String!
        }

        type TokenLogprob {
          id: Int!
          text: String!

          """The token's bytes (a UTF-8 character may span tokens)."""
          bytes: [Int!]!

          """Natural log of its probability under the model (softmax of the raw logits)."""
          logprob: Float!

          """The most likely tokens at this step, most likely first."""
          top: [TokenAlternative!]!
        }

        type TokenAlternative {
          id: Int!
          text: String!
          bytes: [Int!]!
          logprob: Float!
        }

        type Usage {
          promptTokens: Int!
          completionTokens: Int!
        }

        type Timings {
          queuedMs: Float!
          timeToFirstTokenMs: Float!
          totalMs: Float!
          tokensPerSecond: Float!

          """Prompt tokens whose memory came from the prefix cache (saved at a prefill chunk boundary; the answer is the same as without it)."""
          cachedPromptTokens: Int!
        }

        type LoadedModel {
          """The artifact md5 the instance is keyed by (revisions with the same weights share it)."""
          md5: String!
          revisions: [String!]!

          """Every byte the model holds, all devices together: what llama.cpp allocated (weights, KV cache, compute buffers) and the saved prompt prefixes."""
          memoryBytes: Long!

          """The same by device: host memory first, then each GPU."""
          memory: [DeviceMemory!]!
          slots: Int!
          activeSlots: Int!
          queueDepth: Int!
          lastUsedAt: DateTime!

          """The inference worker holding it (as it last reported; revisions are then not known); null in this process."""
          worker: String
        }

        """A loaded model's memory on one device, as llama.cpp allocated it."""
        type DeviceMemory {
          """`host` (every buffer in host memory), or a GPU's name (`CUDA0`)."""
          device: String!

          """What the device is (a GPU's model); empty for host memory."""
          description: String!
          gpu: Boolean!
          weightsBytes: Long!

          """The KV cache and other per-sequence state."""
          contextBytes: Long!
          computeBytes: Long!
          prefixCacheBytes: Long!

          """The model's own host memory outside llama.cpp's buffers (vocabulary, metadata), measured from the allocator during its dry run."""
          metadataBytes: Long!
          totalBytes: Long!
        }

        type PullPayload {
          modelRevision: ModelRevision!

          """Objects this pull downloaded (0 when everything was cached or another pull fetched it)."""
          downloadedObjects: Int!
          downloadedBytes: Long!
          cached: Boolean!
        }

        type Transfer {
          """The canonical revision being pulled."""
          id: ID!
          expectedBytes: Long!
          receivedBytes: Long!
          downloadedObjects: Int!
        }

        type Model {
          id: ID!
          name: String!
          description: String
          path: String!

          """One entry per commit of the default branch where the artifact's md5 changed, newest first."""
          revisions: [ModelRevision!]!

          """The model as of the default branch's newest commit."""
          latest: ModelRevision

          """Active GTO versions, highest first."""
          versions: [String!]!

          """GTO stages currently assigned."""
          stages: [String!]!
        }

        type ModelRevision {
          """Canonical id: name@<sha of the commit that last changed the artifact>."""
          id: ID!
          model: Model!
          commit: Commit!
          createdAt: DateTime!
          author: String!
          message: String!
          artifact: Artifact!

          """The stage that produced the artifact; null when a .dvc file tracks it."""
          stage: PipelineStage

          """The producing stage and every stage upstream of it, sources first."""
          pipeline: [PipelineStage!]!

          """The first source dataset (kept from the original schema); see datasets."""
          dataset: DatasetRevision

          """Source datasets over the whole pipeline: DVC-tracked inputs no stage produces."""
          datasets: [DatasetRevision!]!

          """Parameters of every pipeline stage with their locked values."""
          parameters: [Parameter!]!

          """Git-tracked dependencies of every pipeline stage."""
          code: [Dependency!]!

          """The files the revision's commit changed against its first parent (every file of a root commit; at most 1000): with the commit and the artifact, the whole lineage of an artifact no pipeline produces."""
          changedFiles: [String!]!
        }

        type Commit {
          sha: String!
          author: String!
          email: String!
          date: DateTime!
          message: String!
        }

        type Artifact {
          path: String!
          md5: String!
          size: Long!
          nfiles: Int

          """Where the bytes are kept: dvc (a DVC remote, fetched into the cache), git (committed to Git, read from the object database) or lfs (a Git LFS pointer committed to Git, the content on the repository's LFS server). For lfs, md5 is empty until the object is fetched (LFS names it by sha256)."""
          origin: String!

          """The SHA-256 of the bytes when the repository names it: a Git LFS pointer's oid, or computed from the blob of an artifact committed to Git; null for a DVC out (DVC records an md5 only)."""
          sha256: String

          """The Git blob holding the bytes, for an artifact committed to Git."""
          blob: String

          """Whether the artifact is in the local cache, verified."""
          cached: Boolean!

          """The check of the OpenSSF Model Signing signature beside the weights (model.gguf.sig, in Git or DVC) against the signers trusted for the model: made when the weights load (or now, when they are cached)."""
          signature: WeightsSignature!
        }

        """A check of a model's weights against their signature."""
        type WeightsSignature {
          """verified; unverified (reason says why); unsigned (no signature); unchecked (a signature whose weights are not fetched yet: checked when they load)."""
          status: String!

          """The signature file's path in the repository."""
          file: String

          """key or certificate, when verified."""
          method: String

          """Who signed, when verified: the key's id (sha256: of its DER) or the signing certificate's subject."""
          signer: String

          """Why the signature did not verify."""
          reason: String

          """The weights' SHA-256, once they were hashed."""
          sha256: String
        }

        type DatasetRevision {
          id: ID!
          path: String!
          md5: String!
          size: Long!
          nfiles: Int

          """The commit that last changed the dataset's .dvc file."""
          commit: Commit

          """Set for dvc import-ed data."""
          source: ImportSource

          """Model revisions on the default branch whose pipeline read this data at this md5."""
          usedBy: [ModelRevision!]!
        }

        type ImportSource {
          url: String!
          path: String!
          rev: String
        }

        type Parameter {
          file: String!
          key: String!

          """The value as YAML scalar text, e.g. "0.0001"."""
          value: String!
        }

        type Dependency {
          path: String!
          md5: String!
        }

        type PipelineStage {
          name: String!
          cmd: String!
          deps: [Dependency!]!
          outs: [Dependency!]!
          parameters: [Parameter!]!
        }

        type RepositoryStatus {
          source: String!
          defaultBranch: String!
          head: String!
          models: Int!
        }
        """#
}
