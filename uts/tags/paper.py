"""The paper's released UTS vocabulary (3k tags, rank order), to compare our vocabularies against.

Data, not code: `label_3k.json` of AudenAI/Auden (`examples/uts/configs/label/`, commit 2f78687c,
Apache-2.0), the Unified Tag System released with the paper, built from Qwen2.5-7B tags of
Qwen3-Omni captions of CaptionStew. Its smaller files (800, 1k, 1.5k, 2k) are prefixes of this
ranking for K <= 1000 (checked when this module was written); the top 100 and top 1k used by the
vocabulary report are prefixes here. Kept exactly as released: two tags appear twice
(`instructional`, `unresolved`), some are plural/singular or separator variants of one another, so
comparisons go through our normaliser's identity (`paper_keys`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from uts.tags.normalize import normalize_tag, tag_key

__all__ = [
    "PAPER_SOURCE",
    "PAPER_TOPS",
    "paper_keys",
    "paper_overlap",
    "paper_overlap_lines",
    "paper_tags",
    "tag_identity",
]

PAPER_TOPS = (100, 1000)  # the paper's top-N compared against in the report and the stage summary
PAPER_SOURCE = "AudenAI/Auden examples/uts/configs/label/label_3k.json @ 2f78687c (Apache-2.0)"

# The 3,000 released tags in rank order, "|"-separated (a tag may hold a space: "happy hardcore").
_RELEASED = """
    electronic|studio|speech|male|bass|reverb|music|professional|guitar|click|instrumental|voice|
    reverberant|hiss|hum|dry|synth|informal|metallic|technical|clear|intimate|drums|production|
    indoor|vocal|clean|high-fidelity|drum|buzz|distortion|synthetic|digital|abrupt|synthesized|
    dance|piano|cinematic|rustling|reverberation|female|engine|rock|crowd|melancholic|emotional|
    formal|high_fidelity|sudden|silence|distorted|ambient|vocalist|buzzer|synthesizer|bassline|
    compressed|live|instruction|percussive|percussion|rumble|intense|clipping|tutorial|neutral|calm|
    lo-fi|mechanical|melodic|tense|controlled|nostalgia|cut-off|solo|stereo|arpeggio|tension|
    industrial|narration|chiptune|speaker|orchestral|melody|thud|band|monophonic|dynamic|
    conversation|instructional|impact|room|contrast|fidelity|dramatic|climax|syncopated|high-energy|
    metal|spanish|beep|outdoor|transition|casual|hip-hop|acoustic|mono|interruption|pad|nostalgic|
    electronics|expressive|aggressive|drone|error|thump|loop|jazz|atmospheric|rhythmic|muffled|club|
    background|modern|analog|repetitive|jarring|performance|excitement|vocals|urban|melancholy|
    rustle|cut|sine|playful|immersive|chime|reflective|suspense|tone|pop|harsh|roar|funk|laughter|
    legato|train|unresolved|raw|dense|vintage|clicks|compression|informative|clatter|high_energy|
    demonstration|edit|sports|recording|crescendo|venue|quiet|low_fidelity|brass|clipped|
    low-fidelity|faint|raspy|energy|drum-machine|kitchen|introspective|orchestra|southern|doppler|
    natural|guitars|isolated|sustained|russian|microphone|audio|squeak|british|game|upbeat|trance|
    accent|introduction|motivational|punchy|choir|rhythm|clarity|wind|strings|static|vibrato|
    energetic|interview|chaotic|background-noise|solitary|scraping|driving|analytical|squeal|pause|
    electronic-hiss|echo|arpeggiated|vehicle|private|disruption|french|string|consumer-grade|
    screech|whine|alert|rap|bright|explanation|friendly|scream|domestic|faint-hiss|clink|riff|child|
    home|humor|motorcycle|announcer|low-frequency|epic|latin|steady|glitch|authoritative|clank|
    assertive|electric|acceleration|commentary|romantic|narrative|high-quality|analysis|narrator|
    water|japanese|classical|broadcast|looped|conversational|ensemble|american|garage|spoken|
    dialogue|warm|moderate|chord|monologue|nasal|hypnotic|lofi|close-mic|improvisation|diesel|close|
    dissonant|repetition|beat|interrupt|fabric|high-frequency|retro|house|suspenseful|idling|german|
    resolution|violin|precise|test|sterile|punk|brief|lyrics|sharp|drop|footsteps|folk|education|
    high-pitched|close-miked|harmony|environment|hihat|baritone|engagement|anthemic|clip|snare|
    techno|exclamation|australian|lecture|polished|chant|sample|meditative|homage|reflection|
    build-up|kick|instruments|groove|gaming|promotional|bell|intensity|applause|mix|cultural|tunnel|
    football|measured|review|staccato|rave|shouting|bird|documentary|fingerstyle|synthwave|
    video_game|heroic|announcement|disruptive|electric-guitar|italian|siren|ballad|edm|whirring|
    workshop|censorship|growl|trap|four-on-the-floor|general-american|commentator|incomplete|
    fragment|minimalist|syncopation|singing|urgency|whoosh|action|harmonic|censor|humorous|tire|
    computer|dog|public|educational|cooking|male_voice|indoors|blues|processed|interrupted|shout|
    video-game|virtuosic|hard|cavernous|audience|revving|confident|gymnasium|didactic|relaxed|minor|
    chaos|musical|woman|cyclical|eurodance|drumbeat|soft|human|chorus|organ|car|excerpts|english|
    sparse|crinkling|highfidelity|brazilian|alarm|supportive|whistle|low-frequency-hum|sound|
    commercial|enclosed|cutoff|spontaneous|fanfare|rural|structured|laugh|saxophone|stadium|teasing|
    pristine|call-response|engaging|personal|warehouse|track|futuristic|consumer|amateur|
    contemplative|concert|machine|historical|urgent|clack|artifact|murmur|metalcore|breakdown|
    breath|cello|slow|background_noise|festival|soundscape|enthusiastic|outdoors|factual|
    malfunction|hardcore|breakbeat|concert_hall|layered|anticipation|fusion|demo|accordion|vibrant|
    voices|vocalization|space|1980s|background_music|frustration|male-voice|electronic-hum|rubato|
    euphoric|confrontational|korean|comedy|exhaust|machinery|resonant|motor|pop-rock|surprise|
    emotive|grinding|excited|gospel|clinical|podcast|cathedral|scrape|flute|appliance|high|tranquil|
    synth-pop|unscripted|build|lyrical|basketball|transitional|motif|shimmer|meme|buildup|ambience|
    ethereal|soul|saturated|horn|ceremonial|square|optimistic|celebratory|camaraderie|sound_effect|
    unpolished|rattling|8bit|mood|breathy|academic|crash|feminine|collaborative|news|polish|
    portuguese|chuckle|structure|shimmering|1990s|hesitant|cymbal|hi-hat|direct|discussion|lively|
    call-and-response|product|young|adult|cut_off|children|articulate|routine|arena|hall|creak|
    uplifting|home-studio|chillhop|pedagogical|question|mandarin|hesitation|transitions|rhetorical|
    fast|shaker|notification|danceable|low_frequency|rapping|insects|progressive|ominous|
    four_on_the_floor|explosion|voiceover|idle|tires|robotic|keyboard|encouragement|experimental|
    chirp|horror|hook|clunk|handling|command|small|methodical|dutch|complex|social|consumer_grade|
    screams|arabic|drama|theatrical|indie|balanced|tempo|excerpt|stationary|hardstyle|transient|
    response|fade|field|gameplay|emphatic|sizzling|warning|emergency|trumpet|proximity|lead|
    comparison|chillwave|distress|focused|abrupt_end|candid|manipulation|editing|catchy|swing|
    unfinished|quality|sound_effects|celebration|jingle|glissando|event|faint_hiss|subway|rnb|
    community|pulsing|rattle|disco|spatial|mournful|anecdote|hi-hats|major|drumkit|sacred|silent|
    climactic|bass-guitar|positive|truck|electronic_hiss|song|clicking|general_american|loud|sigh|
    description|wide|drummachine|arcade|grunts|sine-wave|shouts|hindi|banter|sawtooth|atmosphere|
    indian|delay|church|middle-aged|edited|open|throttle|ukulele|presentation|minimal|solemn|
    corporate|gentle|door|groan|waterfall|bedroom|combat|general|drum_machine|salsa|sine_wave|snap|
    intimacy|inhale|resigned|thai|cheers|abrupt-end|group|classroom|clapping|interaction|insect|
    sustain|overlap|harp|sub-bass|minor-key|choral|signal|utilitarian|hard-edit|calibration|dark|
    gunfire|rehearsal|plastic|field-recording|intro|repeated|square-wave|Southern|electronic_music|
    tight|dance-pop|inhalation|alternative|unified|deliberate|authority|organic|cheer|female_voice|
    amusement|flamenco|paper|background-hiss|traffic|artificial|dissonance|abrasive|cough|man|
    fading|buzzing|crisp|speaking|single|exuberant|confrontation|background_hiss|clap|instructions|
    turbocharger|boom-bap|satirical|tearing|camera|breathing|noise|interactive|synth-bass|clothing|
    splash|toy|reverent|close_mic|pouring|chromatic|moderate-fidelity|worship|correction|8-bit|
    uncertainty|cathartic|hisss|lowfidelity|anime|speakers|low|authentic|video|bathroom|hybrid|
    serious|evaluation|ticking|warmth|advertising|male-speaker|failure|advice|dubstep|contemporary|
    collision|harmonies|catharsis|birds|cat|drum-kit|military|whir|soulful|low_frequency_hum|tap|
    slap|gabber|high_tempo|high_quality|fan|synchronized|office|modulation|exhalation|enthusiasm|
    introspection|effect|peaceful|archive|pads|approach|ambiance|boom|clarinet|tenor|colloquial|
    panning|synthpad|composition|soprano|synth-pad|blues-rock|bustling|yelp|unease|refrigerator|
    affectionate|empathetic|gravelly|buzzy|bark|institutional|statement|punchline|unboxing|anthem|
    polyrhythmic|literary|environmental|reggae|hisst|scientific|system|empty|truncated|modal|
    dancing|setting|turkish|stinger|monotone|parody|banjo|training|orchestration|clang|emphasis|
    expert|documentation|mature|808|large|sound-effect|internet|vast|radio|jet|mysterious|preview|
    scripted|disappointment|pop-punk|hardrock|synthesis|soundtrack|beeps|loopable|British|food|
    minor_key|wave|moderate_fidelity|critique|instructor|texture|bus|crack|relaxation|step-by-step|
    call|two-stroke|online|electric_guitar|v8|cliffhanger|tech|safety|segment|chimes|marker|fill|
    conflict|philosophical|montage|deceleration|teaser|rhythm_section|mechanical-hum|manual|list|
    looping|accelerate|synchronization|fiddle|acoustic-guitar|midrange|sequence|dreamy|
    north_american|racing|chugging|concise|trio|scottish|hard-rock|intrusion|square_wave|
    rollercoaster|sting|youthful|bluegrass|stutter|juxtaposition|hard_edit|countdown|concert-hall|
    fishing|sizzle|residential|high_intensity|soothing|caribbean|power|echoic|highenergy|
    instructive|generic|uncertain|sudden_end|faint-hum|cue|sudden-cut|rev|dry_acoustics|chainsaw|
    card|host|clash|fantasy|spacious|monaural|arrangement|accented|solitude|swoosh|device|sarcasm|
    vocalizations|friendship|home-office|baroque|communal|fragmented|technique|high_frequency|
    imperfect|esports|smooth|encouraging|produced|theme|functional|greeting|wail|animal|shriek|
    chopin|gearshift|typewriter|unmodulated|whisper|kickdrum|game-show|bpm|amused|tire-squeal|grunt|
    improvisational|powerful|game_over|female-voice|gratitude|crackling|rain|equipment|
    electric-piano|filter|gunshot|thoughtful|political|uninterrupted|collaboration|electronic_tone|
    resonance|call-to-action|medical|woodwind|gameover|gritty|irony|critical|hard_trance|kick-drum|
    harmonized|dampened|digital_edit|recollection|clinking|satire|open-air|metallic-click|thrash|
    maximalist|ironic|aave|electronic_hum|pitch|reassuring|confirmation|shattering|hymn|media|
    ambient-noise|feedback|technical_error|support|tool|ritualistic|mid-tempo|engaged|south_asian|
    wah-wah|nature|hissing|exertion|funk-rock|cantonese|cover|riser|nighttime|ocean|reassurance|
    ending|station|immediate|bass_guitar|firearm|vietnamese|drum_kit|branding|soundscapes|
    vocal_sample|waltz|high-tempo|tabla|auditorium|programming|cutting|affirmation|movement|reel|
    spectacle|music_box|childlike|v-twin|tagalog|distant|pumping|close_miked|stirring|counting|
    african|african-american|empathy|pauses|negative|acoustics|adjustment|panicked|trailer|uneven|
    restaurant|cricket|clattering|pneumatic|vocal-sample|cleaning|tape|meow|shoegaze|explanatory|
    speculative|pentatonic|strategy|devotional|male_speaker|sitar|abrupt-cut|pulse|aggression|
    practice|remix|vlog|business|lyric|synthpop|ragtime|adventure|party|play|gong|heartbeat|
    drumming|welcoming|ritual|loop-based|tactical|chill|muted|lush|thuds|impacts|ceremony|echos|80s|
    stylized|typing|isolation|czech|downtempo|skateboard|spray|consistent|gurgling|update|
    neoclassical|battle|synth_pad|bengali|motorsport|beginner|dystopian|dynamics|victory|financial|
    evolving|sword|march|masterful|sudden_cut|transit|drum-loop|optimism|country|motivation|
    north-american|mouse|arpeggios|analog_hiss|tremolo|centered|electronic-tone|creaking|magic|
    recreational|metallic_click|mandolin|barking|studio-quality|close-up|youth|underground|forest|
    big_band|dancefloor|mixing|psychedelic|consumer-grade-microphone|bebop|male-vocalist|mellow|
    ornamentation|articulation|forceful|doppler-effect|apology|intentional|destruction|boat|
    build_up|bubbling|polyphonic|scratch|rhythm-section|jamaican|woodwinds|satisfaction|
    sophisticated|short|synth_bass|chatter|hard-surfaced|descending|frying|bilingual|harpsichord|
    sudden-end|pure|major-key|cacophony|maintenance|termination|jazz-funk|storytelling|unison|
    trombone|high_pitched|shock|science|sampled|generalamerican|competitive|male_vocalist|spiritual|
    vinyl|confessional|chopped|outro|vaporwave|closure|shift|singer|crow|waves|symphony|
    acoustic_guitar|quiz|dancehall|challenge|duet|electric-bass|reverberated|dry-acoustics|athletic|
    transformation|thwack|deep|harmonica|persuasive|acid|south-asian|mathematical|crystalline|
    analog-hiss|helicopter|rebellion|marimba|minimalistic|rapper|ambient_noise|glockenspiel|
    animated|flush|cheering|protest|reading|majestic|alternativemusic|rasp|post-punk|crackle|
    clanking|mathematics|female-speaker|procedural|beatboxing|pain|debris|panic|mechanical_hum|
    fast-paced|chain|burnout|jazz-fusion|home_office|unedited|explicit|transmission|public_address|
    fire|technology|recipe|mic|brakes|starter|poprock|gym|kit|exaggerated|remote|brake|samba|
    braking|hard-cut|pan|timbre|computer-fan|dreamlike|slang|ratchet|squelch|squeaking|low-pitched|
    highlight|resignation|advertisement|reference|sweeping|indonesian|electronic_buzz|chopping|
    joyful|approval|strike|doppler_effect|ornamented|instructional|wood|focus|gated|major_key|
    emphasized|sound_design|female-vocalist|gamer|piercing|grunting|game_show|curiosity|sudden_stop|
    bells|roaring|high-performance|squeaks|catastrophic|questioning|burst|tonal|bagpipe|sincere|
    conversations|chillout|repeating|background-music|intelligible|cicadas|new_age|irish|speed|
    giggle|clear-voice|conclusion|meditation|guidance|race|crunch|high-intensity|dragging|decay|
    software|report|irregular|impactful|longing|confidence|cowbell|metallic_clink|street|delivery|
    hungarian|nu-metal|abstract|baking|european|definition|tapping|tamil|speculation|sci-fi|
    descriptive|liturgical|c_minor|staged|constant|city|synthetic_tone|confusion|footstep|intake|
    self_deprecating|thunderous|studio-produced|faint-electronic-hiss|note|rumbling|pipe|argument|
    trip-hop|ceramic|lock|ball|tactile|construction|monster|control|night|crinkle|
    high-frequency-hiss|ostinato|impressionist|strained|backing|editorial|boastful|crowded|shred|
    expertise|japan|metallic_clatter|muffling|drum-beat|pans|chirps|traditional|gurgle|djembe|
    sibilance|electro|theater|rally|self-deprecating|kick_drums|bicycle|hard-surfaces|horse|
    whimsical|greek|inquiry|8_bit|sudden-stop|admiration|declarative|stepwise|squarewave|sales|
    thunder|chirping|tropical|synthesizers|indie-rock|score|unembellished|polka|muddy|retrowave|
    brazilian-portuguese|triumph|observation|metaphor|artistic|digital-edit|goal|gasp|lesson|
    production-quality|spring|instrumentation|cued|complexity|controlled_environment|rooster|
    coaching|wooden|drones|patriotic|arpeggiator|festive|vulnerable|shuffling|high-rpm|beauty|
    entertainment|muscle|endorsement|swedish|timpani|family|death-metal|continuous|contrasting|
    detail|context|background-hum|poetic|cymbals|balkan|spoken-word|address|liquid|interface|
    cyberpunk|recommendation|hypothetical|inclusive|unprocessed|call_and_response|ambiguous|legal|
    modular|bell-like|game-over|melisma|package|echoes|agitation|guttural|instruct|cumbia|jungle|
    gated-reverb|untreated|hockey|exhilaration|latch|maneuver|clacks|affection|religious|muscle-car|
    funky|travel|turbulent|automotive|handheld|anxiety|classic|explosive|testimonial|theremin|
    nurturing|virtuoso|effects|soloist|emphasize|practical|solos|ratcheting|chug|clarification|
    synthetic-tone|birdsong|hi_hat|faint_rustling|swell|articulated|shoes|harley-davidson|sorrow|
    frustrated|archival|science-fiction|tribute|digital_click|1970s|content|post-hardcore|
    a_cappella|grand|lounge|piano_performance|v10|synth_pop|dribble|howl|calming|mc|furniture|
    locomotive|cues|promotion|trill|general-american-accent|example|baseball|laughing|
    professional-studio|table-tennis|barks|production_quality|ingredients|digital_clipping|hiphop|
    cooing|fashion|watermark|censored|makeup|exhibition|menacing|mocking|60hz|chords|section|
    supercharger|dry_acoustic|triumphant|gear|distance|horns|broad|weather|cartoon|men|marching|
    technical_malfunction|steam|new-wave|emo|masking|minecraft|shutter|guitar-riff|lighthearted|
    packaging|workspace|familiar|plucked|panned|chicken|electric_piano|splashing|bach|fast_paced|
    moderate-quality|adult-male|automation|threat|ventilation|shaking|deadpan|modest|wide_stereo|
    matter-of-fact|death|stream|turbine|progression|start|echoing|acoustically-treated|
    middle_eastern|clear-speech|snack|grave|reflected|muffle|film|metallic_clank|highspeed|joy|
    hebrew|narrow|technological|sweep|commentators|supersaw|crying|referee|awe|craft|fades|cadence|
    fadeout|gothic|departure|neutral-tone|regret|driving_rhythm|heavy|clean_production|blender|
    exchange|marine|vibraphone|diagnostic|unfiltered|metallic-clatter|30_seconds|wordless|
    laboratory|post-rock|metallic-clink|evocative|friends|new_wave|fear|conference|agitated|martial|
    guzheng|mystery|hindustani|chanting|bigband|drum_pattern|success|small-room|young-male|j-pop|
    farewell|new-age|chinese|power-tool|skepticism|professional_production|stringpad|soccer|
    unobtrusive|crickets|glass|tuba|container|whip|tennis|harmonious|hollow|rhotic|hobbyist|hand|
    appliances|shoe|celtic|electrical|memory|zipper|filipino|school|phone|controlled-environment|
    diatonic|accelerating|small_room|concrete|decision|fused|global|panting|high-speed|procedure|
    setup|foreboding|strategic|electronic-buzz|self-correction|imperfections|announcements|stop|
    exclamations|match|nes|low-quality|serbian|operation|infant|serene|commands|dynamic_range|
    test-tone|price|rolling|room_reverb|ambient-hum|symphonic|female_vocalist|telephone|
    neutral_tone|call_response|klezmer|privacy|wet|sync|moderate_quality|debate|recitation|
    placeholder|expletive|live_performance|fitness|relief|finnish|jam|health|lead-synth|accident|
    cry|diy|pet|unhurried|melismatic|unsettling|passing|grinder|dribbling|interjection|
    studio_production|bossa-nova|somber|grunge|club_music|crowd_murmur|drum_beat|resilience|k-pop|
    badminton|acoustically_treated|instrument|design|pizzicato|wobble|intrusive|mashup|vivid|
    digital-clipping|activity|frenetic|punjabi|thumping|fade-out|measurement|secure|pulsating|slide|
    44|reaction|struggle|taps|Japanese|sudden-silence|brazilian_portuguese|consumer-grade-recording|
    menu|martial-arts|cabin|electro-funk|apologetic|informal_tone|stress|virtuosity|synthetic_buzz|
    process|overdriven|tightly|casual_tone|repair|tire_squeal|competition|rapid|gate|
    acoustically-controlled|pour|museum|error_signal|asmr|girl|noisy|enclosure|christmas|stuttering|
    sporting|closing|fragmentary|sarcastic|technical-failure|meticulous|button|end|scale|launch|
    drum-and-bass|immersion|technical-error|drum_and_bass|cautionary|whirr|reporter|timer|nu-disco|
    background_hum|earnest|chewing|synths|website|clanging|suspending|non-rhotic|pronunciation|purr|
    mambo|ambition|prelude|clickety-clack|clock|rpg|dead|clucking|recorded|standard|clanks|
    metallic_clang|technical_artifact|sudden-cutoff|chill-out|wrestling|uk|female_speaker|
    supernatural|recreation|rumbles|darkwave|digital-click|j-rock|exercise|indistinct|reedy|
    close-miking|inquisitive|joke|cheerful|bowling|diesel-engine|clinks|engineering|exhale|
    field_recording|message|teamwork|emotion|confession|roll|surreal|nightclub|unaccompanied|
    high_frequency_hiss|sadness|bleep|breakcore|tear|room-reverb|palm-muted|security|
    impressionistic|calm_tone|visual|IDM|vocoder|crowd_noise|distorted_guitar|bass_drum|humming|
    ping|carnival|storm|pool|fabric-rustling|hi_hats|profanity|television|invitation|golf|droning|
    fabric-rustle|surf|sharp-click|stereo_field|vulnerability|businesslike|record|call_to_action|
    beach|pump|crisis|xylophone|shutdown|dry-acoustic|market|fighting|crunching|a-cappella|
    uncompleted|dawn|error-signal|defensive|intonation|nocturne|detached|improvised|book|
    synthetic-buzz|bar|nonverbal|data|hvac|highrpm|young-female|brand|steel-string|rich|objective|
    spacey|classical_music|purposeful|gunshots|sorrowful|volleyball|snapshot|caution|test_tone|
    abrupt_transition|studio_recording|digital_artifact|comfort|clear_voice|injury|musette|stately|
    tambourine|shatter|math|america|smartphone|relaxing|fight|mechanical_rumble|high-tech|racecar|
    key|electronic_dance_music|chemistry|trimmed|guitar_riff|language|sound-effects|
    mid-20th-century|task|multicultural|broadband-hiss|brush|household|questions|rotor|sound-design|
    tones|city-pop|passionate|multiple|studio_quality|audiobook|subtle|criticism|passage|nba|
    finality|friction|final|curve|eurobeat|home_recording|multiplayer|improvisatory|history|
    autotune|garden|electronic-music|sign-off|string_section|catastrophe|mockery|ascending|taped|
    shuffle|chord_progression|progressive_house|transaction|heartbreak|clean-mix|facility|hand-drum|
    density|social-media|low_quality|brittle|gravel|drift|casual-conversation|assertion|
    studio-recording|crowd-murmur|clear_speech|contentment|clips|features|militaristic|unresolved|
    release|cartoonish|amplified|spectator|dough|taiwanese|pounding|show|harmonium|team|slogan|
    screeching|attack|wide-stereo|Australian|ignition|eating|summary|sudden-transition|coffee|
    palm-mute|textural|fretted|sub_bass|digital_silence|sudden_transition|accusation|
    low-frequency-thump|danger|chuckling|bounce|casual_conversation|constructed|microtonal|
    technical-interruption|italo|sounddesign|carioca|claustrophobic|fail|italo-disco|comic|
    sports_car|chordal|shuttlecock|reggaeton|aviation|oud|cuban|flyby|creative|mouse_click|
    specifications|rpm|bleat|prepared|pops|testimony|culinary|fingerpicking|room_tone|betting|
    paddle|grind|reliable|dread|cold|drill|highpitched|alarmed|self-aware|technical_issue|backdrop|
    synthbass|loss|synthesized_music|progressive-house|absurd|infectious|hoofbeats|coach|
    tranquility|creaks|young_male|chamber|verse|whistling|thunderstorm|detailed|turbulence|happy|
    screaming|power-up|prompt|real-estate|non-native|acoustically|new-york|tom|pigeon|reflections|
    quantized|plosive|tape-hiss|praise|technical-quality|statistical|lecture_hall|16-bit|
    future_bass|research|empowerment|steel|preparation|viola|suburban|bowling-alley|code|
    technical-artifact|evolution|carriage|cliff|hardcut|neutral-accent|hype|degraded|
    synthesized-pad|concerto|sanskrit|shot|collapse|mouse_clicks|jargon|anchor|clothing-rustle|
    homophonic|dogs|toilet|consumer_grade_recording|disorienting|learning|sewing|c_major|collage|
    mixed|brief-pause|smooth_jazz|abrupt_cut|mobile|synth-pads|woodland|everyday|hi-lo|adagio|
    distressed|hope|loop_based|electronic_drums|shouted|public_address_system|transformative|drag|
    gathering|single-speaker|low_frequency_thump|1960s|bass-heavy|vernacular|mexican|universal|
    big-band|concern|conspiratorial|hip_hop|prank|opening|shakuhachi|granular|ship|subdued|
    scratching|memorable|chord-progression|rebel|bag|rapport|future|filler|alternative-rock|
    public-address|holiday|oboe|acknowledgment|brisk|lullaby|mouse-click|summer|rebellious|duck|
    cluttered|pig|chase|voice_over|snare-drum|ringing|dream-pop|pass|bass-line|koto|poetry|draft|
    rushing|modified|engine_rumble|christian|driving-beat|synth_lead|bed|agreement|physical|
    statistics|clutch|full-band|90s|utility|southern-british|participatory|central|inspirational|
    desperation|ice|storage|faint_hum|restrained|acid-house|intellectual|swallow|danish|
    received_pronunciation|diesel_engine|dominant|metallic-clank|supercar|intervention|chickens|
    extreme|haunting|pivotal|dry-room|pigeons|racquet|wheels|student|women|purring|mechanical_noise|
    slicing|boiling|foley|rattles|abrupt-ending|postproduction|swelling|formula_1|technical_quality|
    pacing|skateboarding|dove|social_media|adventurous|engine-rumble|saturation|full|territorial|
    c-minor|drum-fill|bollywood|bass-drum|microwave|realistic|refill|flight|opera|mid-sentence|
    anxious|doublebass|roomtone|electrical-hum|carpeted|commanding|vibration|switch|zap|tools|
    clawhammer|saw|activation|ambiguity|southern-accent|taunt|international|woodworking|
    happy-hardcore|anticipatory|g-funk|toccata|digital_hiss|court|steelpan|sibilant|anticlimax|his|
    affirmative|step_by_step|metallic_impact|creek|drumline|polite|neutral_accent|jubilant|screamed|
    amicable|avant-garde|discovery|disturbance|sloshing|break|footwork|inform|magic-the-gathering|
    vivace|taiko|quote|curious|unity|confined|splashes|boxing|imperfection|giggles|navigation|ding|
    violent|pride|sermon|accompaniment|male_vocal|operatic|guitar-solo|romania|broadband|
    censor-beep|document|barn|distorted-guitar|determined|desperate|strikes|rising|hopeful|
    grindcore|testing|synthesized_bassline|nervous|studio-grade|cardboard|big_beat|callresponse|
    drum-pattern|debussy|expansive|ukrainian|monstrous|university|public_space|rasgueado|cosmetic|
    flapping|mood-setting|request|glug|tinny|pass-by|product-review|art|jump|replay|coo|railway|
    fabric_rustle|interior|hair|malayalam|digital-buzz|tech-house|harsh_buzz|streaming|test_signal|
    sudden-interruption|comment|play-by-play|stereo-field|consumer-microphone|composed|talking|
    resolved|post-production|squeals|conga|cardinal|road|lowfrequency|brassy|buffer|hydraulic|
    exasperated|guided|achievement|crossover|hard_cut|blockbuster|driving_beat|spoken_word|
    slapstick|funk-pop|limited|color|digital-hiss|trade-show|ambient-hiss|punch|surprised|knife|
    card_game|press|steady-hum|high_rpm|1khz|statistic|incident|philosophy|sudden_cutoff|aircraft|
    puck|unprofessional|gasps|harmonics|physics|rimshot|assessment|tape_hiss|clean-production|
    atonal|clutter|cruiser|disaster|anger|soft-thud|pop_music|rachmaninoff|tradition|france|dub|
    indoor-venue|chocolate|romance|sniffle|mike|exhilarating|dream|falsetto|cool|goat|object|
    euphoria|faded|chop|colombian|pop-culture|informational|technical-imperfections|rock_music|
    genre|corruption|determination|official|hangar|installation|romanian|surge|soundeffect|player|
    playfulness|accusatory|telugu|solidarity|minorkey|retro-futuristic|processing|guest|evaluative|
    jazzy|calls|character|exaggeration|underwater|pace|close_miking|low-frequency-rumble|
    abrupt-transition|rhetoric|shoe-squeak|vocabulary|wistful|police|gutural|trade|material|
    southern_british|sneeze|erhu|shing|faint_rustle|murmurs|southern_accent|snort|sound_quality|
    click-clack|crowd-noise|ska|session|yelps|soft_rustling|deep-house|card-game|cascade|
    sustained_tone|kalimba|roots|playground|west-african|search|uneasy|weapon|room-reverberation|
    algorithm|chickadee|surf-rock|clean_mix|bridge|growls|whoop|bowed|synthetic_buzzer|startup|
    trick|dispute|ride|british-accent|bowl|bass_line|experiment|notes|running|power_tool|
    hard_surfaces|local|beats|formula1|tiger|placement|low_frequency_rumble|levantine|
    digital-artifact|cycling|sharp_click|coda|metallic_scraping|fiction|chanson|norteño|park|
    problem-solving|dismissive|banda|chuffing|ambient_sounds|moroccan|inviting|tuning|
    mechanical_click|boing|cafeteria|exclaim|consonant|c-major|bulgarian|bigbeat|soft-rustling|
    hard-surface|prayer|backyard|automated|swish|brass_section|story|hallelujah|clear_tone|alarming|
    quartet|consumer_grade_microphone|gusts|layering|proud|mid-century|declaration|table|
    naturalistic|shower|human_voice|beeping|fish|small-space|afro-cuban|coin|clacking|turbocharged|
    threatening|indie-pop|recount|technical-malfunction|stone|abrupt_edit|comedic|
    environmental-noise|metronomic|sample-based|progress|voice-over|flame|blast|photography|sport|
    nuanced|technical-explanation|upward|laser|electric-motor|distraction|highquality|suspension|
    painting|no_vocals|lament|room-tone|teaching|metallic-impact|sad|gravitas|planning|grating|boy|
    tango|theological|fizzing|driving-rhythm|hard_bop|near-silence|complaint|breathiness|giggling|
    directive|unexpected|formal_tone|lead_guitar|train_station|terminology|metaphorical|black|
    angle-grinder|stomping|garlic|recorder|linear|latin-american|robin|negotiation|french_horn|
    digital_error|chess|mechanical-click|growling|sports_arena|modulated|americans|fingerpicked|
    screamo|fuzz|high_performance|pattern|sensory|electronic_dance|home-recorded|happy hardcore|
    aquatic|battery|new_york|pedal|clear-tone|gear-shift|faint-rustling|river|unambiguous|dry_sound|
    exasperation|dry-mic|electric_bass|archaic|carnatic|keys|precision|mid-range|swahili|cockpit|
    dynamic-range|marketing|slavic|spectators|calm-tone|mouth|synthesized-bass|oppressive|location|
    digital-cut|big|fireworks|vacuum|artifacts|signature|synthesized-bassline|revelation|upshift|
    self_deprecation|popping|specific|squawk|vocal_samples|afrobeat|error-tone|16_bit|descent|
    project|cafe|snow|exhaustion|hunting|alarms|yip|declamatory|salt|economic|unemotional|HVAC|
    middle_aged|leaves|mishap|snore|carbonated|attention|development|norwegian|digital_production|
    exploration|dance_music|original|bitpop|sports-car|faithful|sidechain|young-adult|nail|sounds|
    metallic-scraping|northern|sugar|punctuation|high-pressure|self_correction|comedian|non-verbal|
    general-american-english|synth_pads|pen|soul-jazz|sudden_silence|hammer|folk-pop|exciting|
    turntable|16bit|reporting|sudden_edit|happyhardcore|bass-synth|mock|close-microphone|
    synthesized_pad|drum_loop|communication|mod|government|bravado|technically|mother|
    room_acoustics|parking|clothing_rustle|parade|immaculate|decrescendo|Spanish|dry-sound|samples|
    connection|fabric_rustling|thick|logo|mid_tempo|briefing|indo|young-woman|sound_collage|
    marching_band|gust|leadership|assembly|alap|pokémon|consumer_device|puzzle|settling|60-hz-hum|
    celesta|crackles|gardening|treated|aus|morning|thudding|swimming|butter|controlled-setting|
    woodblock|bassdrum|walking|vocal-hook|wall-of-sound|ambient_hum|furnished|multilingual|magical|
    tragic|amusement-park|participation|mechanics|
"""


@cache
def paper_tags() -> tuple[str, ...]:
    """The released tags, best first (3,000 entries, spelled as released)."""
    text = "".join(line.strip() for line in _RELEASED.splitlines())
    tags = tuple(text.split("|")[:-1])  # every tag ends with "|"
    if len(tags) != 3000:
        raise AssertionError(f"the embedded paper vocabulary holds {len(tags)} tags, not 3000")
    return tags


def tag_identity(tag: str) -> str | None:
    """A tag's identity under our normaliser (`Drums`, `drums`, `drum` -> `drum`); None if empty."""
    form = normalize_tag(tag)
    return None if form is None else tag_key(form)


@cache
def paper_keys(top: int) -> frozenset[str]:
    """Identities of the paper's top-`top` released tags."""
    return frozenset(k for k in map(tag_identity, paper_tags()[:top]) if k is not None)


def paper_overlap(tags: Sequence[str], top: int) -> list[str]:
    """Our `tags` (in their order) whose identity is among the paper's top-`top`, one per identity."""
    keys, seen, shared = paper_keys(top), set(), []
    for tag in tags:
        key = tag_identity(tag)
        if key is not None and key in keys and key not in seen:
            seen.add(key)
            shared.append(tag)
    return shared


def paper_overlap_lines(tags: Sequence[str], *, listed: int | None) -> list[str]:
    """How many of the paper's top-100 and top-1k tags `tags` hold (by normalised identity), with
    the shared tags in our rank order; `listed` caps each list (None: all)."""
    lines = [
        f"Compared by normalised identity (`Drums` = `drum`) with the paper's released vocabulary "
        f"({PAPER_SOURCE}); this vocabulary's {len(tags):,} tags."
    ]
    for top in PAPER_TOPS:
        shared, n_keys = paper_overlap(tags, top), len(paper_keys(top))
        shown = shared if listed is None else shared[:listed]
        more = f" ... {len(shared) - len(shown)} more" if len(shown) < len(shared) else ""
        lines.append(
            f"- paper top {top:,} ({n_keys:,} distinct): {len(shared):,} shared "
            f"({len(shared) / n_keys:.1%}): {', '.join(shown) or '-'}{more}"
        )
    return lines
