"""The pages' words in Swedish (default) and English, in one place.

UI strings live in ``STRINGS``; code lists (indicators, categories, reasons, …) come from
``protocol.codes`` so pages, schemas and the API say the same thing. Service error messages are
English; ``field_error`` translates the common ones and leaves the rest as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from protocol.codes import LABELS, REASON_LABELS

LANGS = ("sv", "en")
DEFAULT_LANG = "sv"
LOCAL_TIME = ZoneInfo("Europe/Stockholm")

STRINGS: dict[str, tuple[str, str]] = {
    # layout
    "skip_to_content": ("Hoppa till innehållet", "Skip to content"),
    "app_name": ("barnplan", "barnplan"),
    "nav_main": ("Huvudmeny", "Main menu"),
    "nav_plans": ("Mina planer", "My plans"),
    "nav_children": ("Barn", "Children"),
    "nav_new_plan": ("Ny plan", "New plan"),
    "nav_ops": ("Översikt", "Overview"),
    "nav_log": ("Utväxlingslogg", "Exchange log"),
    "nav_peers": ("Noder", "Peers"),
    "nav_outbox": ("Utkorg", "Outbox"),
    "nav_stats": ("Uppföljning", "Follow-up"),
    "logged_in_as": ("Inloggad som", "Signed in as"),
    "logout": ("Logga ut", "Sign out"),
    "language": ("Språk", "Language"),
    "other_language": ("In English", "På svenska"),
    "role_professional": ("Yrkesverksam", "Professional"),
    "role_lead": ("Samordnare (huvudansvarig)", "Lead professional"),
    "role_operator": ("Driftansvarig", "Operator"),
    "required_mark": ("obligatoriskt", "required"),
    "save": ("Spara", "Save"),
    "cancel": ("Avbryt", "Cancel"),
    "add_row": ("Lägg till rad", "Add a row"),
    "none": ("Inga", "None"),
    "yes": ("Ja", "Yes"),
    "no": ("Nej", "No"),
    "form_has_errors": (
        "Formuläret har fel. Rätta fälten som är markerade nedan; inget har sparats.",
        "The form has errors. Fix the marked fields below; nothing was saved.",
    ),
    "error_prefix": ("Fel:", "Error:"),
    # login
    "login_title": ("Logga in", "Sign in"),
    "login_intro": (
        "Logga in med ditt användar-id och lösenord på den här noden.",
        "Sign in with your user id and password on this node.",
    ),
    "user_id": ("Användar-id", "User id"),
    "password": ("Lösenord", "Password"),
    "login_button": ("Logga in", "Sign in"),
    "login_failed": (
        "Fel användar-id eller lösenord.",
        "Wrong user id or password.",
    ),
    "login_throttled": (
        "För många misslyckade försök. Vänta en stund och försök igen.",
        "Too many failed attempts. Wait a while and try again.",
    ),
    "logged_out": ("Du är utloggad.", "You are signed out."),
    "login_intro_provider": (
        "Logga in med din organisations inloggning ({name}).",
        "Sign in with your organisation's sign-in ({name}).",
    ),
    "login_with_provider": ("Logga in med {name}", "Sign in with {name}"),
    "signed_in_via": ("inloggad via {via}", "signed in through {via}"),
    "login_password_heading": ("Med lösenord", "With a password"),
    "passwords_off": (
        "Inloggning med lösenord är avstängd på den här noden. Logga in med din organisations "
        "inloggning.",
        "Signing in with a password is turned off on this node. Sign in with your "
        "organisation's sign-in.",
    ),
    "sign_in_provider_down": (
        "Inloggningstjänsten {name} svarar inte just nu. Försök igen om en stund. Kvarstår "
        "felet, kontakta nodens driftansvarige.",
        "The sign-in service {name} is not answering right now. Try again in a while. If it "
        "goes on, contact the node's operator.",
    ),
    "sign_in_failed": (
        "Inloggningen via {name} kunde inte slutföras, så du är inte inloggad. Börja om genom "
        "att klicka på knappen nedan.",
        "Signing in through {name} could not be completed, so you are not signed in. Start "
        "again with the button below.",
    ),
    "sign_in_no_role": (
        "{name} kände igen dig, men du har ingen roll i barnplan på den här noden. Be din "
        "organisations behörighetsadministratör om en roll.",
        "{name} recognised you, but you have no role in barnplan on this node. Ask your "
        "organisation's access administrator for one.",
    ),
    "sign_in_unknown_user": (
        "{name} kände igen dig, men du är inte registrerad som användare på den här noden. Be "
        "nodens driftansvarige lägga till dig.",
        "{name} recognised you, but you are not registered as a user on this node. Ask the "
        "node's operator to add you.",
    ),
    "sign_in_disabled": (
        "Ditt konto på den här noden är avstängt. Kontakta nodens driftansvarige.",
        "Your account on this node is disabled. Contact the node's operator.",
    ),
    "sign_in_no_subject": (
        "{name} skickade inte det användar-id som den här noden behöver. Kontakta nodens "
        "driftansvarige.",
        "{name} did not send the user id this node needs. Contact the node's operator.",
    ),
    # errors
    "error_403_title": ("Åtkomst nekad", "Access denied"),
    "error_403_text": (
        "Du har inte behörighet till den här sidan.",
        "You are not allowed to open this page.",
    ),
    "error_csrf_text": (
        "Formuläret saknade en giltig säkerhetskod (CSRF) och skickades inte. Inget har sparats. "
        "Ladda om sidan och försök igen.",
        "The form had no valid security token (CSRF) and was refused. Nothing was saved. "
        "Reload the page and try again.",
    ),
    "error_404_title": ("Sidan finns inte", "Page not found"),
    "error_404_text": ("Det finns ingen sådan sida här.", "There is no such page here."),
    "error_405_title": ("Metoden stöds inte", "Method not allowed"),
    "error_409_title": ("Det gick inte", "That did not work"),
    "error_500_title": ("Något gick fel", "Something went wrong"),
    "back_to_start": ("Till startsidan", "Back to the start page"),
    # plans list
    "plans_title": ("Mina planer", "My plans"),
    "plans_intro": (
        "Planer som din verksamhet leder eller deltar i.",
        "Plans your agency leads or takes part in.",
    ),
    "plans_empty": ("Inga aktiva planer ännu.", "No active plans yet."),
    "plan": ("Plan", "Plan"),
    "child": ("Barn", "Child"),
    "our_role": ("Vår roll", "Our role"),
    "role_in_plan_lead": ("Leder planen", "Leads the plan"),
    "role_in_plan_participant": ("Deltar", "Takes part"),
    "lead_agency": ("Ledande verksamhet", "Lead agency"),
    "created": ("Skapad", "Created"),
    "participants": ("Deltagare", "Participants"),
    "open": ("Öppna", "Open"),
    "invitations_title": ("Inbjudningar", "Invitations"),
    "invitations_empty": ("Inga inbjudningar väntar.", "No invitations are waiting."),
    "invitation_from": ("Inbjudan från", "Invitation from"),
    "invitation_pnr": ("Gäller personnummer", "For personal identity number"),
    "received": ("Mottagen", "Received"),
    "link_to_child": ("Koppla till barn", "Link to child"),
    "choose_child": ("Välj barn", "Choose a child"),
    "link_button": ("Koppla", "Link"),
    "decline_button": ("Avböj", "Decline"),
    "invitation_linked": (
        "Inbjudan är kopplad. Den ledande noden fick besked: {outcome}.",
        "Invitation linked. The lead node was told: {outcome}.",
    ),
    "invitation_declined": ("Inbjudan är avböjd.", "Invitation declined."),
    "invitation_no_match": (
        "Inget barn i era register har det här personnumret: lägg till barnet för att koppla "
        "inbjudan, eller avböj den.",
        "No child in your records has this personal identity number: add the child to link "
        "the invitation, or decline it.",
    ),
    # children
    "children_title": ("Barn", "Children"),
    "children_intro": (
        "Barn som din verksamhet har i sina egna register. Uppgifterna lämnar inte noden.",
        "Children in your agency's own records. These details do not leave the node.",
    ),
    "children_empty": ("Inga barn registrerade.", "No children recorded."),
    "add_child": ("Lägg till barn", "Add a child"),
    "name": ("Namn", "Name"),
    "personnummer": ("Personnummer", "Personal identity number"),
    "personnummer_hint": ("ÅÅÅÅMMDD-NNNN", "YYYYMMDD-NNNN"),
    "child_added": ("Barnet är tillagt.", "The child was added."),
    # new plan
    "new_plan_title": ("Ny plan", "New plan"),
    "new_plan_intro": (
        "Som samordnare skapar du planen och bjuder in de verksamheter som ska delta.",
        "As lead professional you create the plan and invite the agencies taking part.",
    ),
    "pick_agencies": ("Verksamheter som bjuds in", "Agencies to invite"),
    "purpose": ("Syfte", "Purpose"),
    "reason": ("Anledning till planen", "Why the plan exists"),
    "responsible": ("Huvudansvar", "Overall responsibility"),
    "this_node": ("Den här noden", "This node"),
    "create_plan": ("Skapa plan och skicka inbjudningar", "Create plan and send invitations"),
    "no_children_yet": (
        "Det finns inga barn på noden än. Lägg till barnet först.",
        "There are no children on this node yet. Add the child first.",
    ),
    "no_peers_yet": (
        "Noden litar inte på några andra noder än. Be driftansvarig lägga till dem.",
        "This node trusts no other nodes yet. Ask the operator to add them.",
    ),
    "plan_created": ("Planen är skapad.", "The plan was created."),
    # plan page
    "plan_title": ("Plan för {child}", "Plan for {child}"),
    "plan_title_unlinked": ("Plan", "Plan"),
    "plan_facts": ("Om planen", "About the plan"),
    "status": ("Status", "Status"),
    "lead_professional": ("Samordnare", "Lead professional"),
    "our_fragments": ("Våra planfragment", "Our plan fragments"),
    "our_fragments_intro": (
        "Det här har din verksamhet skrivit. Varje ändring sparas som en ny version.",
        "What your agency wrote. Every change is saved as a new version.",
    ),
    "no_fragments": ("Inga planfragment än.", "No plan fragments yet."),
    "version": ("Version", "Version"),
    "edit_new_version": ("Ändra (ny version)", "Edit (new version)"),
    "new_fragment": ("Nytt planfragment", "New plan fragment"),
    "edit_fragment": (
        "Ändra planfragment (sparas som version {version})",
        "Edit plan fragment (saved as version {version})",
    ),
    "fragment_saved": (
        "Planfragmentet är sparat (version {version}).",
        "The plan fragment was saved (version {version}).",
    ),
    "lead_tools": ("För samordnaren", "For the lead professional"),
    "record_consent": ("Registrera samtycke", "Record consent"),
    "view_shared": ("Visa den samlade planen", "View the shared plan"),
    "consents_title": ("Samtycken", "Consents"),
    "no_consents": ("Inget samtycke registrerat.", "No consent recorded."),
    "consent_valid": ("Gäller", "Valid"),
    "consent_given_by": ("Samtycke från", "Consent given by"),
    "consent_revoked_at": ("Återkallat {when}", "Revoked {when}"),
    "consent_active": ("Gällande", "In force"),
    # fragment editor
    "category": ("Kategori", "Category"),
    "category_hint": (
        "Samtycket avgör vilka kategorier som får delas med vem.",
        "Consent decides which categories may be shared with whom.",
    ),
    "indicators": ("Välbefinnande (SHANARRI)", "Wellbeing indicators (SHANARRI)"),
    "summary": ("Sammanfattning", "Summary"),
    "needs": ("Behov", "Needs"),
    "goals": ("Mål", "Goals"),
    "actions": ("Insatser", "Actions"),
    "events": ("Händelser", "Events"),
    "what": ("Vad", "What"),
    "who": ("Vem", "Who"),
    "start": ("Från", "From"),
    "end": ("Till", "Until"),
    "by_date": ("Senast", "By"),
    "on_date": ("Datum", "Date"),
    "indicator": ("Område", "Indicator"),
    "no_indicator": ("(fragmentets område)", "(the fragment's indicator)"),
    "child_view": ("Barnets egen syn", "The child's view"),
    "family_view": ("Familjens syn", "The family's view"),
    "next_review": ("Nästa uppföljning", "Next review"),
    "internal_note": (
        "Intern anteckning (visas inte för familjen)",
        "Internal note (not shown to the family)",
    ),
    "row": ("Rad {n}", "Row {n}"),
    "save_fragment": ("Spara planfragment", "Save plan fragment"),
    # consent form
    "consent_title": ("Registrera samtycke", "Record consent"),
    "consent_intro": (
        "Registrera vad familjen har samtyckt till. Samtycket signeras av noden och skickas till "
        "alla deltagare, som själva avgör varje utlämnande utifrån det.",
        "Record what the family consented to. The node signs the consent and sends it to every "
        "participant, and each of them decides every release from it.",
    ),
    "consenters": ("Personer", "People"),
    "consenters_hint": (
        "En kort referens per person (t.ex. vh1, vh2), aldrig personnummer.",
        "A short reference per person (e.g. vh1, vh2), never an identity number.",
    ),
    "consenter_ref": ("Referens", "Reference"),
    "consenter_role": ("Roll", "Role"),
    "consenter_required": ("Samtycke krävs", "Consent required"),
    "consenter_given": ("Har samtyckt", "Has consented"),
    "role_guardian": ("Vårdnadshavare", "Guardian"),
    "role_child": ("Barnet", "The child"),
    "role_young_person": ("Den unge", "The young person"),
    "grants": ("Vad får delas med vem", "What may be shared with whom"),
    "grants_hint": (
        "Kryssa i vilka kategorier varje verksamhet får lämna ut, och till vem.",
        "Tick which categories each agency may release, and to whom.",
    ),
    "grant_from": ("Från {agency}", "From {agency}"),
    "grant_to": ("Till", "To"),
    "valid_from": ("Gäller från", "Valid from"),
    "valid_until": ("Gäller till och med", "Valid until"),
    "evidence_ref": (
        "Underlag (referens till blankett eller e-tjänst)",
        "Evidence (reference to the signed form or e-service)",
    ),
    "save_consent": ("Signera och skicka samtycket", "Sign and send the consent"),
    "consent_recorded": (
        "Samtycket är registrerat och skickat.",
        "The consent was recorded and sent.",
    ),
    "distribution": ("Utskick", "Distribution"),
    # shared plan
    "shared_title": ("Samlad plan för {child}", "Shared plan for {child}"),
    "shared_intro": (
        "Sammanställd nu från alla deltagare. Inget av det som hämtats sparas.",
        "Assembled just now from every participant. Nothing fetched is stored.",
    ),
    "assembled_at": ("Sammanställd", "Assembled"),
    "participant_status": ("Deltagare och status", "Participants and status"),
    "agency": ("Verksamhet", "Agency"),
    "fragments_count": ("Fragment", "Fragments"),
    "categories": ("Kategorier", "Categories"),
    "details": ("Detaljer", "Details"),
    "st_included": ("Med i planen", "Included"),
    "st_withheld": ("Undanhållet", "Withheld"),
    "st_unreachable": ("Nås inte", "Unreachable"),
    "st_timed_out": ("Svarade inte i tid", "Timed out"),
    "st_invalid": ("Ogiltigt svar", "Invalid reply"),
    "st_refused": ("Nekade", "Refused"),
    "st_not_linked": ("Inte kopplad", "Not linked"),
    "st_not_requested": ("Inte efterfrågad", "Not requested"),
    "plan_revoked": (
        "Samtycket återkallades {when}. Inga uppgifter hämtas eller visas.",
        "Consent was revoked {when}. Nothing is fetched or shown.",
    ),
    "consent_expired_note": ("Samtycket har gått ut.", "The consent has expired."),
    "by_indicator": ("Utifrån barnets välbefinnande", "By wellbeing indicator"),
    "unassigned": ("Övrigt", "Other"),
    "actions_table": ("Insatser – vem gör vad, när", "Actions – who does what, when"),
    "source": ("Källa", "Source"),
    "verified": ("verifierad", "verified"),
    "signed_with": ("signerad med nyckel {key}", "signed with key {key}"),
    "chronology": ("Händelser", "Chronology"),
    "views_title": ("Barnets och familjens röst", "The child's and the family's voice"),
    "summaries": ("Sammanfattningar", "Summaries"),
    "nothing_shared": ("Inget att visa.", "Nothing to show."),
    "family_copy": ("Familjens version (Min plan)", "Family copy (My plan)"),
    "fhir_download": ("Ladda ner som FHIR (JSON)", "Download as FHIR (JSON)"),
    "print": ("Skriv ut", "Print"),
    "revoke_title": ("Återkalla samtycke", "Revoke consent"),
    "revoke_intro": (
        "Om familjen drar tillbaka sitt samtycke: registrera det här. Alla deltagare meddelas och "
        "slutar lämna ut uppgifter. Återkallelsen är slutgiltig.",
        "If the family withdraws consent, record it here. Every participant is told and stops "
        "releasing. The revocation is final.",
    ),
    "revoke_confirm": (
        "Jag bekräftar att familjen har återkallat samtycket",
        "I confirm that the family has withdrawn its consent",
    ),
    "revoke_confirm_missing": ("Bekräfta genom att kryssa i rutan.", "Confirm by ticking the box."),
    "revoke_button": ("Återkalla samtycket", "Revoke the consent"),
    "revoke_js_confirm": (
        "Återkalla samtycket? Det går inte att ångra.",
        "Revoke the consent? This cannot be undone.",
    ),
    "revoked_done": (
        "Samtycket är återkallat. {n} deltagare meddelas.",
        "The consent is revoked. {n} participants are being told.",
    ),
    "no_consent_yet": (
        "Inget samtycke är registrerat för planen. Registrera familjens samtycke först.",
        "No consent is recorded for this plan. Record the family's consent first.",
    ),
    # family copy
    "family_title": ("Min plan", "My plan"),
    "family_intro": (
        "Det här är planen som alla som hjälper {child} har kommit överens om.",
        "This is the plan everyone helping {child} has agreed on.",
    ),
    "family_why": ("Varför finns planen?", "Why is there a plan?"),
    "family_child_says": ("Det här säger barnet", "What the child says"),
    "family_family_says": ("Det här säger familjen", "What the family says"),
    "family_goals": ("Det här vill vi uppnå", "What we want to achieve"),
    "family_todo": ("Det här ska göras", "What will be done"),
    "family_next": ("Nästa gång vi ses och går igenom planen", "Next time we review the plan"),
    "family_who": ("Vem", "Who"),
    "family_from": ("från", "from"),
    "family_until": ("till", "until"),
    "family_by": ("senast {date}", "by {date}"),
    "family_contact": ("Samordnare för planen", "Coordinator of the plan"),
    "family_revoked": (
        "Samtycket är återkallat. Planen delas inte längre mellan verksamheterna.",
        "Consent has been withdrawn. The plan is no longer shared between agencies.",
    ),
    "fhir_missing": (
        "FHIR-export finns inte ännu på den här noden.",
        "FHIR export is not available on this node yet.",
    ),
    # operators
    "ops_title": ("Driftöversikt", "Operations overview"),
    "ops_intro": (
        "Granska nodens utväxlingar med andra noder. Här visas aldrig planinnehåll, namn eller "
        "personnummer.",
        "Review this node's exchanges with its peers. Plan content, names and identity numbers "
        "are never shown here.",
    ),
    "verify_title": ("Loggens integritet", "Log integrity"),
    "verify_button": ("Verifiera loggen nu", "Verify the log now"),
    "verify_never": (
        "Loggen har inte verifierats sedan noden startade.",
        "The log has not been verified since the node started.",
    ),
    "verify_ok": (
        "OK: loggen är hel. {entries} poster, {checkpoints} signerade kontrollpunkter, "
        "{witnesses} vittnen.",
        "OK: the log is intact. {entries} entries, {checkpoints} signed checkpoints, "
        "{witnesses} witnesses.",
    ),
    "verify_failed": (
        "FEL: loggen har ändrats eller skadats.",
        "FAILED: the log was changed or damaged.",
    ),
    "verified_at": ("Verifierad {when}", "Verified {when}"),
    "log_entries": ("Poster i loggen", "Log entries"),
    "peers_count": ("Betrodda noder", "Trusted peers"),
    "outbox_backlog": ("Väntande meddelanden", "Pending messages"),
    "log_title": ("Utväxlingslogg", "Exchange log"),
    "filters": ("Filter", "Filters"),
    "since": ("Från och med", "From"),
    "until": ("Till", "Until"),
    "peer": ("Nod", "Peer"),
    "plan_id": ("Plan-id", "Plan id"),
    "type": ("Typ", "Type"),
    "outcome": ("Utfall", "Outcome"),
    "any": ("(alla)", "(any)"),
    "reason_filter": ("Skäl (kod)", "Reason (code)"),
    "filter_button": ("Filtrera", "Filter"),
    "assemblies": ("Sammanställningar (uppskattat)", "Assemblies (estimated)"),
    "pst_lead": ("Leder planen", "Leads the plan"),
    "pst_invited": ("Inbjuden", "Invited"),
    "pst_pending": ("Väntar på koppling", "Waiting to be linked"),
    "pst_linked": ("Kopplad", "Linked"),
    "pst_declined": ("Avböjde", "Declined"),
    "pst_failed": ("Nåddes inte", "Could not be reached"),
    "clear_filters": ("Rensa filter", "Clear filters"),
    "seq": ("Nr", "Seq"),
    "time": ("Tid", "Time"),
    "direction": ("Riktning", "Direction"),
    "dir_in": ("in", "in"),
    "dir_out": ("ut", "out"),
    "released": ("Utlämnat", "Released"),
    "withheld": ("Undanhållet", "Withheld"),
    "professional": ("Handläggare (id)", "Professional (id)"),
    "log_empty": ("Inga poster matchar.", "No entries match."),
    "previous_page": ("Föregående sida", "Previous page"),
    "next_page": ("Nästa sida", "Next page"),
    "page_n": ("Sida {n}", "Page {n}"),
    "date_hint": ("ÅÅÅÅ-MM-DD", "YYYY-MM-DD"),
    "bad_date": ("Ange ett datum som ÅÅÅÅ-MM-DD.", "Give a date as YYYY-MM-DD."),
    "bad_plan_id": (
        "Ett plan-id ser ut som 8-4-4-4-12 hexadecimala tecken.",
        "A plan id looks like 8-4-4-4-12 hexadecimal characters.",
    ),
    "peers_title": ("Betrodda noder", "Trusted peers"),
    "reachable": ("Nåbar", "Reachable"),
    "reach_ok": ("Ja", "Yes"),
    "reach_down": ("Nej", "No"),
    "reach_bad": ("Svarar felaktigt", "Answers wrongly"),
    "reach_unknown": ("Okänt", "Unknown"),
    "last_contact": ("Senaste kontakt", "Last contact"),
    "last_exchange": ("Senaste utgående", "Last outbound"),
    "keys": ("Nycklar", "Keys"),
    "valid_until_key": ("giltig till {when}", "valid until {when}"),
    "key_no_expiry": ("gäller tills vidare", "no expiry"),
    "key_expired": ("utgången", "expired"),
    "key_expires_soon": ("går snart ut", "expires soon"),
    "never": ("aldrig", "never"),
    "outbox_title": ("Utkorg", "Outbox"),
    "outbox_intro": (
        "Återkallelser som ska nå andra noder. De skickas om tills mottagaren bekräftar.",
        "Revocation notices that must reach peers. They are retried until acknowledged.",
    ),
    "outbox_empty": (
        "Utkorgen är tom: alla meddelanden är bekräftade.",
        "The outbox is empty: every notice has been acknowledged.",
    ),
    "backlog_per_peer": ("Väntande per nod", "Backlog per peer"),
    "pending": ("Väntar", "Pending"),
    "attempts": ("Försök", "Attempts"),
    "next_attempt": ("Nästa försök", "Next attempt"),
    "last_error": ("Senaste fel", "Last error"),
    "delivered": ("Levererad", "Delivered"),
    "show_delivered": ("Visa även levererade", "Show delivered too"),
    "stats_title": ("Uppföljning", "Follow-up"),
    "stats_intro": (
        "Siffror utan personuppgifter, räknade ur utväxlingsloggen och utkorgen de senaste "
        "{weeks} veckorna.",
        "Figures without personal data, counted from the exchange log and the outbox over the "
        "last {weeks} weeks.",
    ),
    "weeks": ("Veckor", "Weeks"),
    "show": ("Visa", "Show"),
    "assemblies_per_week": ("Sammanställda planer per vecka", "Plans assembled per week"),
    "week": ("Vecka", "Week"),
    "plans_assembled": ("Planer", "Plans"),
    "fragment_requests": ("Förfrågningar till andra noder", "Requests to peers"),
    "release_by_category": (
        "Utlämnat och undanhållet per kategori (förfrågningar till oss)",
        "Released and withheld by category (requests to us)",
    ),
    "requested": ("Efterfrågad", "Requested"),
    "withheld_reasons": ("Undanhållet, per skäl", "Withheld, by reason"),
    "revocations_title": (
        "Återkallelser och hur snabbt de nådde alla",
        "Revocations and how long they took to reach everyone",
    ),
    "revoked_at": ("Återkallad", "Revoked"),
    "peers_reached": ("Nådda noder", "Peers reached"),
    "time_to_all": ("Tid tills alla nåtts", "Time to reach everyone"),
    "not_yet": ("inte än", "not yet"),
    "unreachable_title": ("Noder som inte gick att nå", "Peers that could not be reached"),
    "failures": ("Misslyckade", "Failures"),
    "last_failure": ("Senast", "Last"),
    "no_data": ("Inga uppgifter under perioden.", "No data for the period."),
    "seconds": ("{n} s", "{n} s"),
}

PEER_STATUS_KEYS = {
    "included": "st_included",
    "withheld": "st_withheld",
    "unreachable": "st_unreachable",
    "timed_out": "st_timed_out",
    "invalid": "st_invalid",
    "refused": "st_refused",
    "not_linked": "st_not_linked",
    "not_requested": "st_not_requested",
}

# Common service and pydantic messages in Swedish; anything else is shown as the service said it.
_ERROR_SV: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^Input should be a valid date"), "Ange ett datum som ÅÅÅÅ-MM-DD."),
    (re.compile(r"^String should have at most (\d+) characters?"), "Högst {0} tecken."),
    (re.compile(r"^List should have at most (\d+) items?"), "Högst {0} rader."),
    (re.compile(r"^Input should be '(.*)'$"), "Välj ett av alternativen."),
    (re.compile(r"^Field required"), "Obligatoriskt."),
    (re.compile(r"^required, at most (\d+) characters"), "Obligatoriskt, högst {0} tecken."),
    (re.compile(r"^no such child"), "Välj ett barn på den här noden."),
    (re.compile(r"^already recorded, as child (\S+)"), "Personnumret finns redan (barn {0})."),
    (
        re.compile(r"^does not match the invitation"),
        "Barnets personnummer stämmer inte med inbjudan.",
    ),
    (re.compile(r"^invite at least one other agency"), "Bjud in minst en annan verksamhet."),
    (re.compile(r"^not trusted peers: (.*)"), "Inte betrodda noder: {0}"),
    (
        re.compile(r"^must be this node or a participant"),
        "Måste vara den här noden eller en deltagare.",
    ),
    (re.compile(r"^at most (\d+) characters"), "Högst {0} tecken."),
    (re.compile(r"^at least (\d+) characters"), "Minst {0} tecken."),
    (re.compile(r"^one of "), "Välj ett av alternativen."),
    (re.compile(r"^unknown indicators"), "Okänt område."),
    (re.compile(r"^an RFC 3339 time"), "Ange ett datum som ÅÅÅÅ-MM-DD."),
    (re.compile(r"^must be after valid_from"), "Måste vara efter startdatumet."),
    (re.compile(r"^not participants of the plan: (.*)"), "Deltar inte i planen: {0}"),
    (
        re.compile(r"^reference the signed paper or e-form"),
        "Ange en referens till den underskrivna blanketten eller e-tjänsten.",
    ),
    (re.compile(r"^use the form YYYYMMDD-NNNN"), "Skriv personnumret som ÅÅÅÅMMDD-NNNN."),
    (re.compile(r"^the date part is not a real date"), "Datumdelen är inte ett riktigt datum."),
    (re.compile(r"^the date part is in the future"), "Datumdelen ligger i framtiden."),
    (re.compile(r"^the check digit is wrong"), "Kontrollsiffran stämmer inte."),
]


def field_error(message: str, lang: str) -> str:
    """A service's field message, in Swedish when we know it."""
    if lang != "sv":
        return message
    for pattern, swedish in _ERROR_SV:
        match = pattern.search(message)
        if match:
            return swedish.format(*match.groups(), text=message)
    return message


@dataclass(frozen=True)
class Translator:
    """Everything a template needs to speak one language."""

    lang: str

    @property
    def index(self) -> int:
        return 0 if self.lang == "sv" else 1

    def __call__(self, key: str, /, **values: object) -> str:
        pair = STRINGS.get(key)
        text = pair[self.index] if pair else key
        return text.format(**values) if values else text

    def label(self, kind: str, code: str | None) -> str:
        if not code:
            return ""
        pair = LABELS.get(kind, {}).get(code)
        return pair[self.index] if pair else code

    def reason(self, code: str | None) -> str:
        if not code:
            return ""
        pair = REASON_LABELS.get(code)
        return pair[self.index] if pair else code

    def has_reason(self, code: str | None) -> bool:
        return bool(code) and code in REASON_LABELS

    def participant(self, status: str) -> str:
        """A participant's standing in a plan (lead, invited, linked, …)."""
        key = f"pst_{status}"
        return self(key) if key in STRINGS else status

    def peer_status(self, status: str) -> str:
        return self(PEER_STATUS_KEYS.get(status, status))

    def error(self, message: str) -> str:
        return field_error(message, self.lang)

    def when(self, value: datetime | str | None) -> str:
        """A time as people read it here: local Swedish time, minutes."""
        if value is None or value == "":
            return ""
        moment: datetime
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return value
        else:
            moment = value
        if moment.tzinfo is None:
            return moment.strftime("%Y-%m-%d %H:%M")
        return moment.astimezone(LOCAL_TIME).strftime("%Y-%m-%d %H:%M")

    def when_utc(self, value: datetime | str | None) -> str:
        """A time for operators, in UTC and saying so: the CLI, the exchange log and the process
        logs all use UTC, and an operator matches a page's row against them."""
        if value is None or value == "":
            return ""
        moment = (
            datetime.fromisoformat(value.replace("Z", "+00:00"))
            if isinstance(value, str)
            else value
        )
        if moment.tzinfo is None:  # the store hands back aware UTC; a naive one is UTC too
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    @staticmethod
    def pnr(value: str | None) -> str:
        """A personnummer as people write it: YYYYMMDD-NNNN."""
        text = value or ""
        return f"{text[:8]}-{text[8:]}" if len(text) == 12 and text.isdigit() else text

    def day(self, value: date | str | None) -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            return value[:10]
        return value.isoformat()


def pick_lang(query_lang: str | None, cookie_lang: str | None) -> str:
    for candidate in (query_lang, cookie_lang):
        if candidate in LANGS:
            return str(candidate)
    return DEFAULT_LANG
