package zuorasim

import (
	"fmt"
	"strings"
)

// kind is how a field's value is stored, compared and printed.
type kind uint8

const (
	kString   kind = iota
	kNumber        // JSON number, exact decimal text
	kBool          // true / false
	kInt           // JSON integer
	kDate          // YYYY-MM-DD
	kDateTime      // stored as Unix seconds, printed in the tenant's zone
)

type field struct {
	name  string // exact JSON name, e.g. "chargeAmount"
	lower string
	kind  kind
	// signed marks an application amount that is negative on an unapply row;
	// Options.UnapplyPositiveAmounts renders it without the sign.
	signed bool
}

// relation is one documented expand[] value. A relation with no target is
// accepted but nests nothing: the simulator does not model that object.
type relation struct {
	name   string // lowercase expand value, e.g. "invoiceitems"
	key    string // camelCase JSON key, e.g. "invoiceItems"
	target string // object path of the nested records, "" when not modelled
	many   bool
	// For a single parent (many == false): the field of this record holding the target's id.
	// For children (many == true): the field of the child holding this record's id.
	via string
}

// schema describes one Object Query object.
type schema struct {
	object     string // path segment, e.g. "invoice-items"
	single     string // lowercase singular, accepted as "<single>.fields[]" for the base
	actionType string // type name for /v1/action/update, "" when not updatable there
	fields     []field
	index      map[string]int  // lowercase name → position
	exact      map[string]int  // name as the schema spells it → position
	filterable map[string]bool // lowercase; sortable unless in filterOnly
	filterOnly map[string]bool
	number     string // field holding the document number (key lookups), "" if none
	expands    map[string]relation
	mustFilter bool   // invoice-items: a filter[] is required
	items      string // object path of this document's line items, "" if none
	// indexed lists more fields (exact names) the table keeps a lookup for,
	// besides those a relation joins on: the AR model finds applications by them.
	indexed []string
	// settlement marks an object that exists only with Invoice Settlement.
	settlement bool
}

// Positions of the fields every object has.
const (
	fID = iota
	fCreatedByID
	fCreatedDate
	fUpdatedByID
	fUpdatedDate
)

const commonFields = "id createdById createdDate:dt updatedById updatedDate:dt "

// Object paths.
const (
	objInvoices        = "invoices"
	objInvoiceItems    = "invoice-items"
	objPayments        = "payments"
	objRefunds         = "refunds"
	objCreditMemos     = "credit-memos"
	objCreditMemoItems = "credit-memo-items"
	objDebitMemos      = "debit-memos"
	objDebitMemoItems  = "debit-memo-items"
	objAccounts        = "accounts"
	objPaymentApps     = "payment-applications"
	objCreditMemoApps  = "credit-memo-applications"
	objRefundApps      = "refund-applications"
)

// Objects lists every Object Query path the simulator serves, parents before items.
var Objects = []string{objAccounts, objInvoices, objInvoiceItems, objPayments, objRefunds,
	objCreditMemos, objCreditMemoItems, objDebitMemos, objDebitMemoItems,
	objPaymentApps, objCreditMemoApps, objRefundApps}

// schemas is built as a package variable (not in init), so that variables
// derived from it (the AR model's field positions) are initialized after it.
var schemas = defineSchemas()

// schemaSpec is one object's schema as written: the fields (name:kind, kind
// "" text, n number, b bool, i integer, d date, dt date-time) after the
// common ones, the lowercase fields that filter and sort, those that only
// filter, and the expands (name=key[>target[*]@via]).
type schemaSpec struct {
	schema                                  *schema
	fields, filterable, filterOnly, expands string
}

// schemaSpecs are the objects the simulator serves (docs/zuora-api.md).
var schemaSpecs = []schemaSpec{
	{
		schema: &schema{object: objInvoices, single: "invoice", actionType: "Invoice", number: "invoiceNumber", items: objInvoiceItems},
		fields: "accountId invoiceNumber invoiceDate:d dueDate:d targetDate:d postedDate:dt postedBy status currency " +
			"amount:n amountWithoutTax:n taxAmount:n taxExemptAmount:n balance:n paymentAmount:n refundAmount:n " +
			"creditMemoAmount:n adjustmentAmount:n creditBalanceAdjustmentAmount:n transferredToAccounting " +
			"autoPay:b reversed:b comments source sourceId sourceType taxStatus paymentTerm eInvoiceStatus " +
			"billToContactId soldToContactId templateId sequenceSetId",
		filterable: "id updateddate accountid amount balance duedate invoicedate invoicenumber reversed sourceid sourcetype status einvoicestatus",
		expands: "account=account>accounts@accountId account.billto=billTo account.soldto=soldTo account.shipto=shipTo " +
			"billtocontact=billToContact billtocontactsnapshot=billToContactSnapshot soldtocontactsnapshot=soldToContactSnapshot " +
			"shiptocontactsnapshot=shipToContactSnapshot invoiceitems=invoiceItems>invoice-items*@invoiceId " +
			"invoiceitems.subscription=subscription invoiceitems.subscription.account=account",
	},
	{
		schema: &schema{object: objInvoiceItems, single: "invoiceitem", mustFilter: true},
		fields: "invoiceId accountId chargeAmount:n taxAmount:n discountAmount:n balance:n quantity:n unitPrice:n uOM sKU " +
			"chargeName chargeNumber chargeDate:dt serviceStartDate:d serviceEndDate:d accountingCode processingType " +
			"sourceItemType subscriptionId subscriptionNumber productId productRatePlanId productRatePlanChargeId " +
			"ratePlanId ratePlanChargeId taxCode taxMode deferredRevenueAccountingCodeId recognizedRevenueAccountingCodeId " +
			"accountsReceivableAccountingCodeId excludeItemBillingFromRevenueAccounting:b bookingReference fulfillmentId",
		filterable: "id updateddate rateplanchargeid invoiceid accountingcode chargedate chargenumber excludeitembillingfromrevenueaccounting " +
			"servicestartdate sourceitemtype subscriptionid subscriptionnumber productrateplanchargeid bookingreference",
		filterOnly: "fulfillmentid",
		expands: "invoice=invoice>invoices@invoiceId subscription=subscription subscriptionowner=subscriptionOwner " +
			"taxationitems=taxationItems rateplancharge=ratePlanCharge orderlineitem=orderLineItem",
	},
	{
		schema: &schema{object: objPayments, single: "payment", actionType: "Payment", number: "paymentNumber"},
		fields: "accountId paymentNumber effectiveDate:d amount:n appliedAmount:n unappliedAmount:n refundAmount:n currency " +
			"status type gatewayState gatewayOrderId referenceId referencedPaymentID source sourceName paymentMethodId " +
			"paymentMethodSnapshotId submittedOn:dt settledOn:dt cancelledOn:dt comment gateway transferredToAccounting",
		filterable: "id updateddate accountid amount effectivedate gatewayorderid gatewaystate paymentmethodid paymentmethodsnapshotid " +
			"paymentnumber referenceid source sourcename status unappliedamount createddate",
		expands: "account=account>accounts@accountId account.billto=billTo account.soldto=soldTo paymentmethod=paymentMethod " +
			"paymentapplications=paymentApplications>payment-applications*@paymentId paymentscheduleitempayments=paymentScheduleItemPayments " +
			"paymentscheduleitempayments.paymentscheduleitem=paymentScheduleItem",
	},
	{
		schema: &schema{object: objRefunds, single: "refund", actionType: "Refund", number: "refundNumber"},
		fields: "accountId refundNumber refundDate:d refundTransactionTime:dt amount:n currency status type sourceType " +
			"methodType referenceID reasonCode comment paymentMethodId paymentMethodSnapshotId transferredToAccounting",
		filterable: "id updateddate accountid paymentmethodsnapshotid amount paymentmethodid reasoncode refunddate refundnumber sourcetype status type",
		expands: "account=account>accounts@accountId account.billto=billTo account.soldto=soldTo paymentmethod=paymentMethod " +
			"refundapplications=refundApplications>refund-applications*@refundId refundapplications.payment=payment " +
			"refundapplications.refundapplicationitems=refundApplicationItems",
	},
	{
		schema: &schema{object: objCreditMemos, single: "creditmemo", number: "memoNumber", items: objCreditMemoItems},
		fields: "accountId invoiceId memoNumber memoDate:d totalAmount:n totalAmountWithoutTax:n taxAmount:n " +
			"totalTaxExemptAmount:n discountAmount:n balance:n appliedAmount:n refundAmount:n currency status " +
			"postedOn:dt postedById reasonCode comment source sourceType reversed:b revenueImpacting einvoiceStatus " +
			"transferredToAccounting",
		filterable: "id updateddate balance einvoicestatus memodate memonumber sourcetype status totalamount invoiceid accountid",
		expands: "account=account>accounts@accountId billtocontact=billToContact billtocontactsnapshot=billToContactSnapshot " +
			"soldtocontactsnapshot=soldToContactSnapshot shiptocontactsnapshot=shipToContactSnapshot " +
			"creditmemoitems=creditMemoItems>credit-memo-items*@creditMemoId creditmemoitems.subscription=subscription " +
			"creditmemoitems.subscription.account=account creditmemoapplications=creditMemoApplications>credit-memo-applications*@creditMemoId",
	},
	{
		schema: &schema{object: objCreditMemoItems, single: "creditmemoitem"},
		fields: "creditMemoId amount:n amountWithoutTax:n taxAmount:n unappliedAmount:n appliedToOthersAmount:n quantity:n " +
			"unitPrice:n unitOfMeasure sku chargeName chargeNumber chargeDate:dt serviceStartDate:d serviceEndDate:d " +
			"invoiceItemId creditFromItemId creditFromItemSource sourceItemType subscriptionId subscriptionNumber " +
			"ratePlanChargeId taxMode accountingCode excludeItemBillingFromRevenueAccounting:b fulfillmentId orderLineItemId",
		filterable: "id updateddate excludeitembillingfromrevenueaccounting sourceitemtype chargenumber subscriptionid " +
			"subscriptionnumber invoiceitemid rateplanchargeid creditmemoid",
		filterOnly: "fulfillmentid orderlineitemid",
		expands: "subscription=subscription rateplancharge=ratePlanCharge subscriptionowner=subscriptionOwner " +
			"credittaxationitems=creditTaxationItems",
	},
	{
		schema: &schema{object: objDebitMemos, single: "debitmemo", number: "memoNumber", items: objDebitMemoItems},
		fields: "accountId invoiceId memoNumber memoDate:d dueDate:d totalAmount:n totalAmountWithoutTax:n taxAmount:n " +
			"totalTaxExemptAmount:n discountAmount:n balance:n currency status postedOn:dt postedById reasonCode " +
			"comments source sourceType einvoiceStatus transferredToAccounting autoPay:b creditMemoId paymentTerm",
		filterable: "id updateddate balance creditmemoid einvoicestatus memodate memonumber sourcetype status totalamount invoiceid accountid",
		expands: "account=account>accounts@accountId billtocontact=billToContact billtocontactsnapshot=billToContactSnapshot " +
			"soldtocontactsnapshot=soldToContactSnapshot shiptocontactsnapshot=shipToContactSnapshot " +
			"debitmemoitems=debitMemoItems>debit-memo-items*@debitMemoId debitmemoitems.subscription=subscription " +
			"debitmemoitems.subscription.account=account",
	},
	{
		schema: &schema{object: objDebitMemoItems, single: "debitmemoitem"},
		fields: "debitMemoId amount:n amountWithoutTax:n balance:n taxAmount:n quantity:n unitPrice:n unitOfMeasure sku " +
			"chargeName chargeNumber chargeDate:dt serviceStartDate:d serviceEndDate:d creditMemoItemId invoiceItemId " +
			"sourceItemType subscriptionId subscriptionNumber ratePlanChargeId productRatePlanChargeId accountingCode " +
			"excludeItemBillingFromRevenueAccounting:b",
		filterable: "id updateddate creditmemoitemid excludeitembillingfromrevenueaccounting sourceitemtype chargenumber subscriptionid " +
			"subscriptionnumber invoiceitemid productrateplanchargeid rateplanchargeid debitmemoid",
		expands: "subscription=subscription rateplancharge=ratePlanCharge subscriptionowner=subscriptionOwner " +
			"debittaxationitems=debitTaxationItems",
	},
	{
		schema: &schema{object: objAccounts, single: "account", number: "accountNumber"},
		fields: "accountNumber name currency status balance:n creditBalance:n totalInvoiceBalance:n unappliedBalance:n " +
			"autoPay:b billCycleDay:i batch crmId parentId billToId soldToId shipToId defaultPaymentMethodId " +
			"paymentTerm lastInvoiceDate:d communicationProfileId invoiceTemplateId ERPAccountId__c",
		filterable: "id updateddate accountnumber balance batch billcycleday billtoid communicationprofileid crmid currency " +
			"defaultpaymentmethodid invoicetemplateid lastinvoicedate name parentid shiptoid soldtoid status " +
			"erpaccountid__c",
		expands: "billto=billTo soldto=soldTo shipto=shipTo defaultpaymentmethod=defaultPaymentMethod " +
			"subscriptions=subscriptions subscriptions.rateplans=ratePlans subscriptions.rateplans.rateplancharges=ratePlanCharges " +
			"payments=payments>payments*@accountId refunds=refunds>refunds*@accountId " +
			"creditmemos=creditMemos>credit-memos*@accountId debitmemos=debitMemos>debit-memos*@accountId " +
			"invoices=invoices>invoices*@accountId usages=usages paymentmethods=paymentMethods",
	},
	{
		// The application objects (docs/zuora-api.md §7): events with their own ids,
		// sortable on exactly the fields they filter on.
		schema: &schema{object: objPaymentApps, single: "paymentapplication", settlement: true,
			indexed: []string{"invoiceId", "debitMemoId", "accountId", "applicationGroupId"}},
		fields: "accountId paymentId invoiceId debitMemoId applyAmount:n effectiveDate:d paymentApplicationStatus " +
			"applicationGroupId billingDocumentOwnerId accountReceivableAccountingCodeId " +
			"unappliedPaymentAccountingCodeId cashAccountingCodeId journalEntryId",
		filterable: "id updateddate effectivedate accountid paymentid applicationgroupid",
		expands:    "payment=payment>payments@paymentId",
	},
	{
		schema: &schema{object: objCreditMemoApps, single: "creditmemoapplication", settlement: true,
			indexed: []string{"invoiceId", "debitMemoId", "accountId", "applicationGroupId"}},
		fields:     "accountId creditMemoId invoiceId debitMemoId amount:n effectiveDate:d applicationGroupId",
		filterable: "id updateddate effectivedate accountid applicationgroupid debitmemoid invoiceid",
		expands:    "creditmemo=creditMemo>credit-memos@creditMemoId",
	},
	{
		schema: &schema{object: objRefundApps, single: "refundapplication", settlement: true,
			indexed: []string{"paymentId", "creditMemoId", "invoiceId", "accountId", "applicationGroupId"}},
		fields: "accountId refundId paymentId creditMemoId invoiceId applyAmount:n effectiveDate:d applicationGroupId " +
			"accountReceivableAccountingCodeId cashAccountingCodeId journalEntryId onAccountAccountingCodeId " +
			"unappliedPaymentAccountingCodeId",
		filterable: "id updateddate accountid applicationgroupid creditmemoid effectivedate paymentid refundid",
		expands:    "refund=refund>refunds@refundId payment=payment>payments@paymentId refundapplicationitems=refundApplicationItems",
	},
}

func defineSchemas() map[string]*schema {
	schemas := map[string]*schema{}
	for _, sp := range schemaSpecs {
		s := *sp.schema // a copy: the spec stays as written
		s.define(sp)
		schemas[s.object] = &s
	}
	for _, obj := range []string{objCreditMemos, objCreditMemoItems, objDebitMemos, objDebitMemoItems} {
		schemas[obj].settlement = true
	}
	for obj, name := range map[string]string{objPaymentApps: "applyAmount", objCreditMemoApps: "amount", objRefundApps: "applyAmount"} {
		sch := schemas[obj]
		sch.fields[sch.pos(name)].signed = true
	}
	return schemas
}

// kinds reads the kind suffix of a field in a schemaSpec.
var kinds = map[string]kind{"": kString, "n": kNumber, "b": kBool, "i": kInt, "d": kDate, "dt": kDateTime}

// define fills s from its spec: the fields, what filters and sorts, the
// expands. It panics on a bad spec, which only this file can hold.
func (s *schema) define(sp schemaSpec) {
	s.defineFields(commonFields + sp.fields)
	s.filterable = map[string]bool{}
	s.filterOnly = map[string]bool{}
	for _, f := range strings.Fields(sp.filterable) {
		s.filterable[f] = true
	}
	for _, f := range strings.Fields(sp.filterOnly) {
		s.filterable[f] = true
		s.filterOnly[f] = true
	}
	for f := range s.filterable {
		if _, ok := s.index[f]; !ok {
			panic(fmt.Sprintf("zuorasim: %s: filterable field %s is not a field", s.object, f))
		}
	}
	s.expands = map[string]relation{}
	for _, tok := range strings.Fields(sp.expands) {
		r := parseRelation(tok)
		s.expands[r.name] = r
	}
}

// defineFields reads the fields of spec (name:kind, space separated).
func (s *schema) defineFields(spec string) {
	s.index, s.exact = map[string]int{}, map[string]int{}
	for _, tok := range strings.Fields(spec) {
		name, k, _ := strings.Cut(tok, ":")
		kd, ok := kinds[k]
		if !ok {
			panic("zuorasim: bad kind in " + tok)
		}
		f := field{name: name, lower: strings.ToLower(name), kind: kd}
		s.index[f.lower] = len(s.fields)
		s.exact[f.name] = len(s.fields)
		s.fields = append(s.fields, f)
	}
	if len(s.fields) > 64 {
		panic("zuorasim: more than 64 fields in " + s.object)
	}
}

// parseRelation reads one expand of a spec: name=key[>target[*]@via].
func parseRelation(tok string) relation {
	var r relation
	name, rest, _ := strings.Cut(tok, "=")
	r.name = name
	key, link, linked := strings.Cut(rest, ">")
	r.key = key
	if linked {
		target, via, _ := strings.Cut(link, "@")
		r.target, r.many = strings.CutSuffix(target, "*")
		r.via = via
	}
	return r
}

// pos returns the position of a field by exact JSON name; it panics on a typo,
// which only the generator can make.
func (s *schema) pos(name string) int {
	if i, ok := s.exact[name]; ok {
		return i // the usual case: the generator's spelling, without lowering it
	}
	i, ok := s.index[strings.ToLower(name)]
	if !ok {
		panic("zuorasim: " + s.object + " has no field " + name)
	}
	return i
}

// pascal turns a JSON field name into the PascalCase a keyset cursor uses.
func pascal(name string) string {
	if name == "" {
		return name
	}
	return strings.ToUpper(name[:1]) + name[1:]
}
